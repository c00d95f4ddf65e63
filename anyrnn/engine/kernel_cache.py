"""Where generated Numba kernels are written, so Numba's cache keeps them between runs.

Numba caches a compiled function next to its source file, so the generated kernels
are written as files into a per-user cache folder: ``$ANYRNN_CACHE_DIR``, else
``$XDG_CACHE_HOME/anyrnn`` (``~/.cache/anyrnn``), else a folder in the system's temp
directory. The package folder is never written, so a read-only site-packages works, and
so does a read-only home (the temp folder is used).

The first use of a kernel on a machine compiles it (seconds; ``python -m anyrnn kernels
--compile`` does all of them at once); the first time that happens in a process, one
line on stderr says so and where the result is kept. Later processes load the kernels
from the cache.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["cache_dir", "load_module", "first_call"]


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
            # a unique name: machines sharing the folder may have processes of one pid
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-"):
                pass
        except OSError:
            continue
        return folder
    raise OSError("no writable folder for anyrnn's compiled kernels; set ANYRNN_CACHE_DIR")


_LOCK = threading.Lock()


def load_module(prefix: str, source: str) -> ModuleType:
    """``source`` as a module file ``<prefix>_<digest>.py`` in the cache folder, imported
    (once per process) under a stable name, so Numba's cache finds it again."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:16]
    path = cache_dir() / f"{prefix}_{digest}.py"
    name = f"anyrnn._kernels.{path.stem}"  # Numba's cache re-imports it by this name
    with _LOCK:
        if name in sys.modules:
            return sys.modules[name]
        if not path.exists():  # written beside it under a unique name, then renamed:
            # another process, maybe on another machine, may be writing the same file
            # (a random name rather than mkstemp's: the file keeps the umask's mode, so a
            # cache folder shared by several users stays readable by all of them)
            tmp = path.parent / f".{path.stem}-{uuid.uuid4().hex}.tmp"
            try:
                with open(tmp, "x") as f:
                    f.write(source)
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        except BaseException:
            del sys.modules[name]
            raise
        return module


_SEEN: set[str] = set()
_NOTED = False


def note(message: str) -> None:
    """Print ``message`` on stderr, the first time only in this process."""
    global _NOTED
    if not _NOTED:
        _NOTED = True
        print(message, file=sys.stderr, flush=True)


def first_call(module: ModuleType, key: str, call: Callable[[], Any]) -> Any:
    """``call()``, noting on stderr (once per process) when it is the first call of
    ``module``'s kernels for ``key`` (a dtype) on this machine, i.e. when it compiles."""
    tag = f"{module.__name__}.{key}"
    if tag in _SEEN:
        return call()
    marker = cache_dir() / f"{module.__name__.rsplit('.', 1)[-1]}.{key}.compiled"
    if not marker.exists():
        note(
            "anyrnn: compiling CPU kernels for this machine (first use only, a few "
            f"seconds each); they are kept in {cache_dir()}"
        )
    result = call()
    try:
        marker.touch()
    except OSError:
        pass
    _SEEN.add(tag)
    return result
