"""A small order-keeping process-pool map over chunks.

Workers are forked when that is safe (no JAX imported and no other threads running: the children then start
instantly with everything already imported) and spawned otherwise (forking a process in which JAX or any other
library runs threads can deadlock).
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any


def parallel_map(fn: Callable[[list], list], items: Sequence[Any], n_workers: int | None = None,
                 chunk_size: int = 32, progress: str | None = None) -> list:
    """``fn`` maps a list of items to a list of results; run it over chunks of ``items`` in a process pool.

    ``n_workers`` defaults to ``os.cpu_count()``; 1 (or few items) runs in this process. Order is kept.
    ``progress`` is a description for a rich progress bar (None: no bar).
    """
    items = list(items)
    chunks = [items[k:k + chunk_size] for k in range(0, len(items), chunk_size)]
    n_workers = (os.cpu_count() or 1) if n_workers is None else max(1, int(n_workers))
    n_workers = min(n_workers, len(chunks)) if chunks else 1

    def bar(iterable):
        if progress is None:
            return iterable
        from rich.progress import track

        return track(iterable, description=progress, total=len(chunks), transient=True)

    results: list = []
    if n_workers <= 1:
        for chunk in bar(chunks):
            results.extend(fn(chunk))
        return results
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context(start_method())
    with concurrent.futures.ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        for chunk_result in bar(pool.map(fn, chunks)):
            results.extend(chunk_result)
    return results


def start_method() -> str:
    """``"fork"`` where available and safe (single-threaded, JAX not imported), else ``"spawn"``."""
    import multiprocessing

    safe = "jax" not in sys.modules and threading.active_count() == 1
    return "fork" if safe and "fork" in multiprocessing.get_all_start_methods() else "spawn"
