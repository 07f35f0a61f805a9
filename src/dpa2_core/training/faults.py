"""Fault injection for the robustness tests of ``dpa2 train`` (inert unless asked for).

The environment variable ``DPA2_FAULT`` holds comma-separated ``ACTION@POINT=VALUE``
items; the trainers and :func:`dpa2_core.training.checkpoints.atomic_write` call
:func:`inject` at their points, which does nothing when the variable is unset:

- points: ``step=N`` (training step ``N`` finished: parameters updated, nothing displayed
  or saved yet), ``write=NAME`` (an atomic write of the file named ``NAME`` starts: no
  byte written), ``written=NAME`` (its temporary file is complete, not yet renamed; a
  ``kill`` here first cuts the temporary file to half its size, a torn write);
- actions: ``kill`` (``SIGKILL`` of this process: no clean-up runs), ``term`` / ``int``
  (``SIGTERM`` / ``SIGINT`` to this process: the trainer stops at the end of the step),
  ``enospc`` (``OSError(ENOSPC)``: a full disk), ``sleep`` (half a second, to widen a
  window for an outside kill).

Example: ``DPA2_FAULT=kill@written=model.ckpt-4.pt dpa2 train input.json``.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from pathlib import Path

__all__ = ["ENV", "inject", "parse"]

ENV = "DPA2_FAULT"
ACTIONS = ("kill", "term", "int", "enospc", "sleep")
POINTS = ("step", "write", "written")


def parse(spec: str) -> list[tuple[str, str, str]]:
    """``[(action, point, value), ...]`` of a ``DPA2_FAULT`` value."""
    out = []
    for item in filter(None, (s.strip() for s in spec.split(","))):
        action, _, rest = item.partition("@")
        point, _, value = rest.partition("=")
        if action not in ACTIONS or point not in POINTS or not value:
            raise ValueError(f"{ENV}={spec!r}: {item!r} is not ACTION@POINT=VALUE with ACTION "
                             f"in {ACTIONS} and POINT in {POINTS}")
        out.append((action, point, value))
    return out


def inject(point: str, where: object, tmp: Path | None = None) -> None:
    """Run the faults ``DPA2_FAULT`` asks for at ``point`` (``where``: the step number or
    the path being written; ``tmp``: the complete temporary file at ``written``)."""
    spec = os.environ.get(ENV)
    if not spec:
        return
    key = Path(where).name if isinstance(where, os.PathLike) else str(where)
    for action, p, value in parse(spec):
        if p != point or value != key:
            continue
        if action == "sleep":
            time.sleep(0.5)
        elif action == "enospc":
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        elif action in ("term", "int"):
            os.kill(os.getpid(), signal.SIGTERM if action == "term" else signal.SIGINT)
        else:
            if tmp is not None and tmp.is_file():
                os.truncate(tmp, tmp.stat().st_size // 2)
            os.kill(os.getpid(), signal.SIGKILL)
