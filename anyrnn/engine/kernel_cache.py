"""Where generated Numba kernels are written, so Numba's cache keeps them between runs.

Numba caches a compiled function next to its source file, so the generated kernels
are written as files into a per-user cache folder: ``$ANYRNN_CACHE_DIR``, else
``$XDG_CACHE_HOME/anyrnn`` (``~/.cache/anyrnn``), else a folder in the system's temp
directory. The package folder is never written, so a read-only site-packages works.
The first use of a kernel compiles it (seconds); later processes load it from the cache.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

__all__ = ["cache_dir"]


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("ANYRNN_CACHE_DIR"):
        out.append(Path(os.environ["ANYRNN_CACHE_DIR"]))
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    out.append(Path(base) / "anyrnn")
    out.append(
        Path(tempfile.gettempdir()) / f"anyrnn-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    )
    return out


@functools.cache
def cache_dir() -> Path:
    """A writable folder for generated kernels (created; its ``kernels`` subfolder)."""
    version = f"py{sys.version_info.major}{sys.version_info.minor}"
    for base in _candidates():
        folder = base / "kernels" / version
        try:
            folder.mkdir(parents=True, exist_ok=True)
            probe = folder / f".probe-{os.getpid()}"
            probe.write_text("")
            probe.unlink()
        except OSError:
            continue
        return folder
    raise OSError("no writable folder for anyrnn's compiled kernels; set ANYRNN_CACHE_DIR")
