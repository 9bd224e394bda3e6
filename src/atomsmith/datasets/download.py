"""Downloading dataset files over HTTPS, verified by sha256, written atomically.

Set ``ATOMSMITH_OFFLINE=1`` to fail at once instead of trying the network. Every failure message says where to
put the file by hand.
"""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from atomsmith.core.files import download_verified
from atomsmith.datasets.errors import ChecksumMismatchError, DownloadError
from atomsmith.datasets.registry import SplitFile

_LOG = logging.getLogger("atomsmith.datasets")


def manual_instructions(dataset: str, split_file: SplitFile, dest: Path, looked: list[Path]) -> str:
    """How to place a file by hand (for offline machines)."""
    size = f"{split_file.size_bytes:,} bytes, " if split_file.size_bytes else ""
    where = "\n  ".join(str(p) for p in looked) or "(nowhere)"
    url = split_file.urls[0] if split_file.urls else "its source"
    return (f"To use {dataset} without network access, download {split_file.filename} ({size}sha256 "
            f"{split_file.sha256}) on a connected machine from\n  {url}\nand place it at\n  {dest}\n"
            f"(or put it in <DIR>/{dataset}/{split_file.filename} and pass data_dir=<DIR> or set "
            f"ATOMSMITH_DATA_DIR=<DIR>). atomsmith looked in:\n  {where}")


def _fetch(url: str, dest: Path, split_file: SplitFile, timeout: float) -> None:
    def mismatch(actual: str, size: int) -> ChecksumMismatchError:
        return ChecksumMismatchError(
            f"{url}: downloaded {size:,} bytes with sha256 {actual}, expected {split_file.sha256}"
            + (f" ({split_file.size_bytes:,} bytes)" if split_file.size_bytes else "")
            + "; the file was discarded. The source may have changed or the download was cut short.")

    download_verified(url, dest, split_file.sha256, timeout, mismatch)


def download(dataset: str, split_file: SplitFile, dest: Path, looked: list[Path], timeout: float = 60.0) -> Path:
    """Download ``split_file`` to ``dest`` from its URLs in turn; verify its sha256.

    Raises:
      DownloadError: offline (``ATOMSMITH_OFFLINE``), or every URL failed; the message says how to place the
        file by hand.
      ChecksumMismatchError: a download completed but its sha256 is wrong (nothing is left at ``dest``).
    """
    help_text = manual_instructions(dataset, split_file, dest, looked)
    if os.environ.get("ATOMSMITH_OFFLINE", "").strip() not in ("", "0"):
        raise DownloadError(f"{dataset} {split_file.filename} is not here and ATOMSMITH_OFFLINE is set.\n{help_text}")
    if not split_file.urls:
        raise DownloadError(f"{dataset} {split_file.filename} has no download URL.\n{help_text}")
    failures = []
    for url in split_file.urls:
        _LOG.info("downloading %s to %s", url, dest)
        try:
            _fetch(url, dest, split_file, timeout)
            return dest
        except (urllib.error.URLError, OSError, TimeoutError) as exc:  # HTTPError is a URLError
            failures.append(f"{url}: {getattr(exc, 'reason', None) or exc}")
    raise DownloadError(f"could not download {dataset} {split_file.filename}:\n  " + "\n  ".join(failures)
                        + f"\n{help_text}")
