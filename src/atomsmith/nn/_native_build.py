"""Compile generated C++ XLA FFI handlers once per machine and register them with JAX (CPU only).

Libraries are cached in ``$ATOMSMITH_KERNEL_CACHE`` (default ``$XDG_CACHE_HOME/atomsmith/kernels`` or
``~/.cache/atomsmith/kernels``) under a hash of the source, compiler, flags, CPU and jax version, so a changed
kernel, machine or toolchain never picks up a stale binary. The compiler is ``$CXX`` (default ``g++``, then
``c++``, ``clang++``). ``ATOMSMITH_NATIVE_KERNELS=0`` disables native kernels entirely.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import jax

ENV_DISABLE = "ATOMSMITH_NATIVE_KERNELS"
ENV_CACHE = "ATOMSMITH_KERNEL_CACHE"
FLAGS = ("-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-fopenmp-simd", "-fno-math-errno",
         "-ffp-contract=fast", "-w")

_LOCK = threading.Lock()
_LOADED: dict[str, str | None] = {}
_WARNED = False


def disabled() -> bool:
    """True when ``ATOMSMITH_NATIVE_KERNELS`` is ``0``/``false``/``no``/``off``."""
    return os.environ.get(ENV_DISABLE, "1").strip().lower() in ("0", "false", "no", "off")


def compiler() -> str | None:
    """Path of the C++ compiler that would be used, or None."""
    return shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++") or shutil.which("clang++")


def cache_dir() -> Path:
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "atomsmith" / "kernels"


@functools.lru_cache(maxsize=None)
def _toolchain_fingerprint(cxx: str) -> str:
    try:
        version = subprocess.run([cxx, "--version"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        version = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = "".join([line for line in f if line.startswith(("model name", "flags"))][:2])
    except OSError:
        cpu = platform.processor()
    return "\0".join([cxx, version, platform.machine(), cpu, " ".join(FLAGS), jax.ffi.include_dir(),
                      jax.__version__])


def _compile(make_source: Callable[[str], str], stem: str) -> tuple[str, Path]:
    cxx = compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set CXX)")
    key = hashlib.sha256((make_source("NAME") + _toolchain_fingerprint(cxx)).encode()).hexdigest()[:16]
    name = f"{stem}_{key}"
    cache = cache_dir()
    library = cache / f"{name}.so"
    if library.exists():
        return name, library
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        source = Path(tmp) / f"{name}.cc"
        source.write_text(make_source(name))
        target = Path(tmp) / f"{name}.so"
        result = subprocess.run([cxx, *FLAGS, f"-I{jax.ffi.include_dir()}", str(source), "-o", str(target)],
                                capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise RuntimeError(f"kernel compilation failed:\n{result.stderr[-4000:]}")
        os.replace(target, library)  # atomic: concurrent builders race harmlessly
    return name, library


def load(make_source: Callable[[str], str], stem: str, handlers: tuple[str, ...]) -> str | None:
    """Build (or find cached), load and register ``<name>_<handler>`` FFI targets; return ``name`` or None.

    ``make_source(name)`` must return a translation unit defining the handler symbols ``<name>_<handler>``.
    Failures (no compiler, compile error, disabled) return None after one warning; callers fall back to JAX.
    """
    global _WARNED
    if disabled():
        return None
    probe = make_source("NAME")
    with _LOCK:
        if probe in _LOADED:
            return _LOADED[probe]
        try:
            name, library = _compile(make_source, stem)
            lib = ctypes.cdll.LoadLibrary(str(library))
            for handler in handlers:
                symbol = f"{name}_{handler}"
                jax.ffi.register_ffi_target(symbol, jax.ffi.pycapsule(getattr(lib, symbol)), platform="cpu")
        except Exception as err:  # noqa: BLE001 - any failure means: use the pure-JAX path
            if not _WARNED:
                warnings.warn(f"atomsmith: native kernel unavailable, using pure JAX ({err})", RuntimeWarning,
                              stacklevel=3)
                _WARNED = True
            name = None
        _LOADED[probe] = name
        return name
