"""What a trainer does when a run is interrupted or its numbers break, for every backend.

- :class:`StopSignals`: ``SIGTERM`` and ``SIGINT`` (Ctrl-C) set a flag instead of killing
  the run; the trainer finishes the current step, saves a checkpoint and returns, and
  ``dpa2 train`` exits with ``128 + signal`` (130 for Ctrl-C, 143 for ``SIGTERM``, the
  shell's convention, so a job script can tell an interrupted run from a finished one)
  after printing :func:`restart_hint`. A second Ctrl-C interrupts at once.
- :class:`NonFiniteError` / :func:`nonfinite_message`: a non-finite loss or gradient never
  reaches the parameters. With ``training.nan_policy = "stop"`` (the default) the run
  stops naming the step and the batch (system and frame indices) and the newest good
  checkpoint; with ``"skip"`` the batch is dropped (no update, the step still counts) and
  the trainer logs each skip and the total.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

__all__ = ["NAN_POLICIES", "NonFiniteError", "StopSignals", "nonfinite_message",
           "restart_hint", "skip_message"]

NAN_POLICIES = ("stop", "skip")


class NonFiniteError(ValueError):
    """A training step met a non-finite loss or gradient (``nan_policy = "stop"``)."""


def _batch(system: str | int, frames) -> str:
    return f"system {system} frames {[int(i) for i in frames]}"


def nonfinite_message(step: int, what: str, system: str | int, frames,
                      checkpoint: Path | None) -> str:
    """One line: step, what was not finite, the batch, the newest good checkpoint."""
    kept = f"the newest good checkpoint is {str(checkpoint)!r}" if checkpoint is not None \
        else "no checkpoint was written yet"
    return (f"step {step}: non-finite {what} on the batch of {_batch(system, frames)}; "
            f"stopped before updating the parameters, {kept} (set training.nan_policy = "
            "\"skip\" to drop such batches instead)")


def skip_message(step: int, what: str, system: str | int, frames, count: int) -> str:
    return (f"step {step}: non-finite {what} on the batch of {_batch(system, frames)}: "
            f"batch skipped ({count} skipped so far)")


def restart_hint(signum: int, step: int, checkpoint: Path) -> str:
    name = signal.Signals(signum).name
    return (f"{name} received: stopped after step {step}, saved {str(checkpoint)!r}; "
            f"continue with: dpa2 train INPUT --restart {checkpoint}")


class StopSignals:
    """Context manager: while active, ``SIGTERM``/``SIGINT`` set :attr:`signum` (the
    trainer polls it once per step); outside the main thread it does nothing."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 0 if self.signum is None else 128 + int(self.signum)

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._old[s] = signal.signal(s, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for s, old in self._old.items():
            signal.signal(s, old)
        self._old.clear()
