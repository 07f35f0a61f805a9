"""Checkpoint files of ``dpa2 train``: one atomic writer and one rotation rule for every
backend.

A backend serialises its state with a callable ``write(tmp_path)``; :func:`save` turns it
into ``<prefix>-<step><suffix>`` so that a kill at any instant leaves either the old set
of files or the new one, never a torn file under a checkpoint's name:

1. ``write`` fills a temporary file in the same folder (``.<name>.tmp``), which is then
   flushed to disk (``fsync``) and renamed over the final name (``os.replace`` is atomic
   on POSIX and Windows), and the folder itself is synced so the rename survives a crash;
2. ``<prefix><suffix>`` (the newest checkpoint) and the one-line ``checkpoint`` pointer file
   are replaced the same way;
3. only then are checkpoints beyond the newest ``max_ckpt_keep`` removed (deepmd-kit's
   rule; 0 keeps all).

A write that fails (full disk, folder not writable) removes its temporary file and raises
:class:`CheckpointError` naming the file and the newest complete checkpoint, which is
untouched. :func:`check_output` refuses to start a new run over another run's
checkpoints, and :func:`data_state` / :func:`restore_data_state` hold every rank's sampler
state and the validation sampler's, for restarts that repeat the uninterrupted run exactly.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from . import faults

__all__ = ["POINTER", "CheckpointError", "OutputError", "atomic_write", "check_output",
           "checkpoints", "clear_run", "data_state", "latest", "restore_data_state",
           "rewind", "rotate", "save", "step_of", "truncate_lcurve"]

POINTER = "checkpoint"  # one line: the file name of the newest checkpoint (deepmd-kit's)
_TMP = ".tmp"


class CheckpointError(ValueError):
    """A checkpoint (or another training output) could not be written; the message names
    the file, the reason and the newest complete checkpoint."""


class OutputError(ValueError):
    """The output folder cannot be used: not writable, or it holds another run."""


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TMP}")


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` through ``write(tmp)`` (a file in the same folder), ``fsync`` it and
    rename it over ``path``; on any error the temporary file is removed and ``path`` is
    unchanged. ``OSError`` becomes :class:`CheckpointError` naming ``path``."""
    path = Path(path)
    tmp = _tmp_path(path)
    try:
        faults.inject("write", path)
        write(tmp)
        faults.inject("written", path, tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise CheckpointError(f"cannot write {str(path)!r}: {reason}") from err
        raise
    return path


def step_of(path: Path, prefix: str, suffix: str) -> int | None:
    """The step of ``<prefix>-<step><suffix>``, else None."""
    m = re.fullmatch(re.escape(prefix) + r"-(\d+)" + re.escape(suffix), path.name)
    return None if m is None else int(m.group(1))


def checkpoints(directory: str | os.PathLike, prefix: str, suffix: str) -> list[Path]:
    """The ``<prefix>-<step><suffix>`` files of ``directory``, oldest step first."""
    found = [(step_of(p, prefix, suffix), p) for p in Path(directory).glob(f"{prefix}-*{suffix}")]
    return [p for s, p in sorted((s, p) for s, p in found if s is not None)]


def latest(directory: str | os.PathLike, prefix: str, suffix: str) -> Path | None:
    """The newest complete checkpoint of ``directory`` (highest step), or None."""
    found = checkpoints(directory, prefix, suffix)
    return found[-1] if found else None


def rotate(directory: str | os.PathLike, prefix: str, suffix: str, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` step checkpoints (``keep <= 0``: keep all);
    returns the removed paths."""
    if keep <= 0:
        return []
    stale = checkpoints(directory, prefix, suffix)[:-keep]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def save(directory: str | os.PathLike, prefix: str, suffix: str, step: int,
         write: Callable[[Path], object], keep: int = 5) -> Path:
    """Write checkpoint ``<prefix>-<step><suffix>`` through ``write(tmp_path)``, then
    ``<prefix><suffix>`` (same bytes) and the ``checkpoint`` pointer, each atomically, then
    rotate to the newest ``keep``. Returns the step file's path."""
    directory = Path(directory)
    path = directory / f"{prefix}-{int(step)}{suffix}"
    try:
        atomic_write(path, write)
        data = path.read_bytes()
        atomic_write(directory / f"{prefix}{suffix}", lambda tmp: tmp.write_bytes(data))
        atomic_write(directory / POINTER, lambda tmp: tmp.write_text(path.name + "\n"))
    except CheckpointError as err:
        good = latest(directory, prefix, suffix)
        keep_note = f"the newest complete checkpoint is {str(good)!r}" if good is not None \
            and good != path else "no earlier checkpoint was touched"
        raise CheckpointError(f"{err}; {keep_note}") from err.__cause__
    rotate(directory, prefix, suffix, keep)
    return path


def _run_files(directory: Path, prefix: str) -> list[Path]:
    names = [p for p in directory.glob(f"{prefix}*") if p.suffix in (".pt", ".npz")
             and (p.stem == prefix or re.fullmatch(re.escape(prefix) + r"-\d+", p.stem))]
    if (directory / POINTER).is_file():
        names.append(directory / POINTER)
    return sorted(names)


def check_output(directory: str | os.PathLike, prefix: str, restart: object = None,
                 overwrite: bool = False, clean: bool = True) -> None:
    """Make sure ``directory`` can take this run's outputs, before any step.

    A new run (``restart`` None) into a folder holding checkpoints of another run
    (``<prefix>[-<step>].pt|.npz`` or a ``checkpoint`` file) is refused unless
    ``overwrite``; the folder must be creatable and writable (checked by writing and
    removing a probe file). ``clean``: remove the temporary files of a killed run (only
    the process that writes, rank 0, may: another rank's clean-up could race its writes).
    Raises :class:`OutputError` naming the folder."""
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".dpa2-write-test-{os.getpid()}{_TMP}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise OutputError(f"output={str(directory)!r}: cannot write there ({reason})") from err
    if restart is None and not overwrite:
        held = _run_files(directory, prefix)
        if held:
            shown = ", ".join(p.name for p in held[:3]) + (", ..." if len(held) > 3 else "")
            raise OutputError(
                f"output={str(directory)!r}: holds checkpoints of another run ({shown}); "
                "continue it with --restart CKPT, choose another --output, or pass --force "
                "to overwrite it")
    for stale in directory.glob(f".*{_TMP}") if clean else ():  # torn writes of a killed run
        stale.unlink(missing_ok=True)


def clear_run(directory: str | os.PathLike, prefix: str) -> list[Path]:
    """Remove the checkpoints of a previous run (``--force``); returns them."""
    held = _run_files(Path(directory), prefix)
    for p in held:
        p.unlink(missing_ok=True)
    return held


def truncate_lcurve(path: str | os.PathLike, step: int) -> int:
    """Drop the rows of ``path`` after ``step`` (written by a run killed after its last
    checkpoint) and a torn last line, so that a restart from ``step`` appends the rows an
    uninterrupted run has; atomic. Returns the number of rows dropped."""
    path = Path(path)
    if not path.is_file():
        return 0
    text = path.read_text()
    lines = text.splitlines(keepends=True)
    kept = []
    for line in lines:
        if line.startswith("#") or not line.strip():
            kept.append(line)
            continue
        fields = line.split()
        if not line.endswith("\n") or not fields[0].isdigit() or int(fields[0]) > step:
            continue
        kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        atomic_write(path, lambda tmp: tmp.write_text("".join(kept)))
    return dropped


def rewind(directory: str | os.PathLike, prefix: str, suffix: str, step: int,
           lcurve_path: str | os.PathLike) -> list[str]:
    """Before a restart at ``step`` in ``directory``: drop the lcurve rows after ``step``
    (:func:`truncate_lcurve`) and the step checkpoints after it (a timeline the restart
    abandons; kept, they would outrank the new files in the rotation and in
    :func:`latest`). Returns a note per change, for the log."""
    notes = []
    rows = truncate_lcurve(lcurve_path, step)
    if rows:
        notes.append(f"{Path(lcurve_path).name}: {rows} row(s) after step {step} dropped")
    later = [p for p in checkpoints(directory, prefix, suffix)
             if (step_of(p, prefix, suffix) or 0) > step]
    for p in later:
        p.unlink(missing_ok=True)
    if later:
        notes.append(f"checkpoints after step {step} removed: "
                     + ", ".join(p.name for p in later))
    return notes


def data_state(train: Sequence[dict], valid: dict | None) -> dict:
    """The sampler part of a checkpoint: every rank's training sampler state (rank order)
    and the validation sampler's (validation runs on rank 0)."""
    return {"train": [dict(s) for s in train], "valid": valid}


def restore_data_state(state: dict | None, rank: int, world_size: int
                       ) -> tuple[dict | None, dict | None, str | None]:
    """(training sampler state of ``rank``, validation sampler state, note): the note is
    not None when the restart cannot repeat the uninterrupted run exactly (a checkpoint
    written by another number of processes: the other ranks' samplers start fresh)."""
    if state is None:
        return None, None, "the checkpoint holds no sampler state: batches start afresh"
    if "rng" in state:  # written before validation/rank states were saved
        return (state if rank == 0 else None), None, \
            "the checkpoint holds only rank 0's training sampler state"
    train = state.get("train") or []
    note = None
    if len(train) != world_size:
        note = (f"the checkpoint was written by {len(train)} process(es), this run has "
                f"{world_size}: ranks without a saved sampler state start afresh")
    return (train[rank] if rank < len(train) else None), state.get("valid"), note
