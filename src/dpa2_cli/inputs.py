"""Reading what the user names on the command line, with one-line errors.

Every failure becomes a ``ValueError`` / ``FileNotFoundError`` whose message names the
file (and the line or frame where one is known); ASE's own exceptions from damaged files
are translated here, so no command shows a traceback for bad input.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from dpa2_core.io.npy_data import DeepmdSystem
from dpa2_core.io.structures import Frame, read_frames

__all__ = ["element_hint", "find_systems", "output_path", "read_structure"]

_TOKEN = re.compile(r"""['"]([^'"]{1,80})['"]""")


def element_hint(missing: Sequence[str], type_map: Sequence[str], model: str) -> str:
    """What would take the elements ``missing``: a model or config whose type_map has them."""
    wanted = list(type_map) + [t for t in missing if t not in type_map]
    return (f"{model} has type_map={list(type_map)}; pass a --model trained with a type_map "
            f"holding {sorted(set(missing))} or a --config whose model.type_map is {wanted}")


def _line_of(path: Path, message: str) -> str:
    """``", line N"`` when the offending token of ``message`` is found in the file."""
    match = _TOKEN.search(message)
    if match is None:
        return ""
    try:
        with open(path, errors="replace") as f:
            for n, line in enumerate(f, 1):
                if match.group(1) in line:
                    return f", line {n}"
    except OSError:
        return ""
    return ""


def read_structure(path: str | Path, type_map: Sequence[str], frames: str | None,
                   model: str) -> list[Frame]:
    """Frames of STRUCTURE (any file ASE reads, or a deepmd system directory)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_file() and path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (no frame to read)")
    try:
        return read_frames(path, list(type_map), frames)
    except ImportError:
        raise
    except Exception as err:  # noqa: BLE001 - ase's readers raise anything on damaged files
        text = " ".join(str(err).split())
        if not _from_ase(err):
            raise _ours(err, text, path, type_map, model) from err
        raise ValueError(f"{path}{_line_of(path, text)}: cannot read it as a structure "
                         f"({type(err).__name__}: {text[:200] or 'no details'})") from err


def _from_ase(err: BaseException) -> bool:
    """Whether ``err`` was raised inside ase (a reader meeting a damaged file)."""
    tb, last = err.__traceback__, None
    while tb is not None:
        last, tb = tb.tb_frame.f_code.co_filename, tb.tb_next
    return last is not None and f"{os.sep}ase{os.sep}" in last


def _ours(err: BaseException, text: str, path: Path, type_map, model: str) -> BaseException:
    """Our own readers' errors, with the file and the next step added where missing."""
    if not isinstance(err, ValueError | FileNotFoundError):
        return ValueError(f"{path}: {type(err).__name__}: {text}")
    if "are not in type_map" in text:
        found = re.search(r"elements (\[[^\]]*\])", text)
        missing = eval_list(found.group(1)) if found else []
        return ValueError(f"{text.split(': elements')[0]}: elements {missing} are not in the "
                          f"model's type_map; {element_hint(missing, type_map, model)}")
    if str(path) in text or path.name in text:
        return err
    return ValueError(f"{path}: {text}{_line_of(path, text)}")


def eval_list(text: str) -> list[str]:
    """``"['Cu', 'Zn']"`` -> ``["Cu", "Zn"]`` (parsed, never evaluated)."""
    return re.findall(r"'([^']*)'", text)


def find_systems(paths: Sequence[str | Path]) -> list[Path]:
    """deepmd systems named by ``--system``: system directories, or every system (a
    folder with ``type.raw``) below a folder, as ``dpa2 train`` expands them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if not p.exists():
            raise FileNotFoundError(f"{p}: no such file or directory")
        if (p / "type.raw").is_file():
            out.append(p)
            continue
        found = sorted(q.parent for q in p.rglob("type.raw")) if p.is_dir() else []
        if not found:
            raise ValueError(f"{p}: not a deepmd system (no type.raw in it or below it)")
        out.extend(found)
    for s in out:
        DeepmdSystem(s)  # fails now, naming the system, rather than halfway through
    return out


def output_path(path: str | Path, suffixes: Sequence[str], option: str = "-o") -> Path:
    """``path`` when it ends in one of ``suffixes``, else a one-line refusal."""
    p = Path(path)
    if p.suffix.lower() not in suffixes:
        raise ValueError(f"{option} {path}: the output must end in one of {list(suffixes)} "
                         "(the suffix picks the format)")
    if not p.parent.exists():
        raise FileNotFoundError(f"{option} {path}: folder {p.parent} does not exist")
    return p
