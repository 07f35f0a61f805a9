"""Bad training data is named (system, file, frame) when a system is opened, before any
training step, and ``dpa2 train`` reports it in one line (exit 2, no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_input
from oracle import WATER

from dpa2_cli.main import main
from dpa2_core.io import DataError
from dpa2_core.io.npy_data import DeepmdSystem


def _system(root: Path, frames=(0, 1, 2)) -> Path:
    """A copy of three frames of the shared water data_0."""
    root.mkdir(parents=True)
    for name in ("type.raw", "type_map.raw"):
        shutil.copy(WATER / "data_0" / name, root / name)
    (root / "set.000").mkdir()
    for name in ("coord", "box", "energy", "force"):
        x = np.load(WATER / "data_0" / "set.000" / f"{name}.npy")
        np.save(root / "set.000" / f"{name}.npy", x[list(frames)])
    return root


def _edit(root: Path, name: str, fn) -> None:
    f = root / "set.000" / f"{name}.npy"
    np.save(f, fn(np.load(f)))


def _nan_at(x, frame, value=np.nan):
    x = x.astype(np.float64)
    x.reshape(x.shape[0], -1)[frame, -1] = value
    return x


def _zero_box(x):
    x = x.copy()
    x[1] = 0.0
    return x


CASES = {
    "missing coord": (lambda r: (r / "set.000" / "coord.npy").unlink(),
                      r"set.000/coord.npy: missing"),
    "unreadable npy": (lambda r: (r / "set.000" / "force.npy").write_bytes(b"not npy"),
                       r"set.000/force.npy: not a readable .npy file"),
    "misshaped force": (lambda r: _edit(r, "force", lambda x: x[:, :-3]),
                        r"set.000/force.npy: shape \(3, 573\); expected \(3, 576\)"),
    "frame counts disagree": (lambda r: _edit(r, "energy", lambda x: x[:2]),
                              r"set.000/energy.npy: 2 frame\(s\), coord.npy has 3"),
    "nan in coord": (lambda r: _edit(r, "coord", lambda x: _nan_at(x, 2)),
                     r"set.000/coord.npy: frame 2 holds NaN or inf"),
    "inf in energy": (lambda r: _edit(r, "energy", lambda x: _nan_at(x, 1, np.inf)),
                      r"set.000/energy.npy: frame 1 holds NaN or inf"),
    "nan in box": (lambda r: _edit(r, "box", lambda x: _nan_at(x, 0)),
                   r"set.000/box.npy: frame 0 holds NaN or inf"),
    "zero-volume box": (lambda r: _edit(r, "box", _zero_box),
                        r"set.000/box.npy: frame 1: the box has zero volume"),
    "empty set": (lambda r: [_edit(r, n, lambda x: x[:0]) for n in
                             ("coord", "box", "energy", "force")],
                  r"set.000/coord.npy: no frames \(an empty set\)"),
    "type beyond type_map.raw": (lambda r: (r / "type.raw").write_text("0\n1\n2\n" + "1\n" * 189),
                                 r"type.raw: atom 2 has type 2, beyond the 2 types of "
                                 r"type_map.raw"),
    "element not in the model": (lambda r: (r / "type_map.raw").write_text("O\nC\n"),
                                 r"elements \['C'\] are not in type_map"),
    "type beyond the model's map": (
        lambda r: ((r / "type_map.raw").unlink(),
                   (r / "type.raw").write_text("0\n" * 191 + "5\n")),
        r"type.raw: atom 191 has type 5, beyond the model's type_map"),
    "no sets": (lambda r: shutil.rmtree(r / "set.000"), r"no set\.\* directories"),
    "types not integers": (lambda r: (r / "type.raw").write_text("O\nH\n"),
                           r"type.raw: not a list of integer types"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_is_named(tmp_path, case):
    root = _system(tmp_path / "sys")
    DeepmdSystem(root, ["O", "H"]).frames()  # the copy itself is fine
    corrupt, match = CASES[case]
    corrupt(root)
    with pytest.raises(DataError, match=match) as err:
        DeepmdSystem(root, ["O", "H"]).frames()
    assert str(root) in str(err.value)


@pytest.mark.parametrize("which", ["training_data", "validation_data"])
@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_train_names_bad_data_before_any_step(tmp_path, capsys, backend, which):
    """Through the command line, on both backends, for a bad training or validation
    system: one line on stderr, exit 2, no traceback, nothing trained (no checkpoint, no
    lcurve row)."""
    bad = _system(tmp_path / "bad")
    _edit(bad, "force", lambda x: _nan_at(x, 1))
    d = json.loads(tiny_input(tmp_path).read_text())
    d["training"][which]["systems"].append(str(bad))
    (tmp_path / "input.json").write_text(json.dumps(d))
    out = tmp_path / "run"
    assert main(["train", str(tmp_path / "input.json"), "--backend", backend,
                 "--output", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"dpa2 train: error: system={str(bad)!r}: set.000/force.npy: frame 1 "
                     "holds NaN or inf"]
    assert not list(out.glob("model.ckpt*")) and not (out / "lcurve.out").exists()
