"""Writing a file so that it appears whole or not at all (model files, artifacts, reports,
plots): the one rule, beside the checkpoints' own variant in
:mod:`dpa2_core.training.checkpoints` (fixed temporary names the restart logic finds)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file in the same folder
    (created if missing; the temporary name ends in ``path``'s suffix, which some writers
    need), which is fsynced, given the mode ``open()`` would have given (the umask's, not
    mkstemp's 0600) and renamed over ``path``. On any error ``path`` is left as it was
    and the temporary file is removed. Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
