"""``dpa2 train``: both trainers print the same lines in the same order and write the same
files, and each restarts from the other's checkpoint."""

from __future__ import annotations

import json
import re

import numpy as np
from conftest import tiny_input

from dpa2_cli.main import main


def _input(tmp_path):
    """The tiny input, made tinier still (one repformer layer, no validation): jax compiles
    its step once for the whole module."""
    path = tiny_input(tmp_path, steps=2)
    d = json.loads(path.read_text())
    d["model"]["descriptor"]["repformer"]["nlayers"] = 1
    d["model"]["fitting_net"]["neuron"] = [8]
    del d["training"]["validation_data"]
    d["training"]["disp_freq"] = 1
    path.write_text(json.dumps(d))
    return path


def _shape(text: str) -> list[str]:
    """Output lines with the numbers and paths blanked: what the two trainers share."""
    text = re.sub(r"\S*run_(torch|jax)\S*", "<path>", text)
    return [re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "#", line) for line in text.splitlines()]


def _lcurve(path) -> np.ndarray:
    return np.loadtxt(path, ndmin=2)


def test_trainers_print_and_write_the_same_and_restart_each_other(tmp_path, capsys):
    inp = _input(tmp_path)
    out, files = {}, {}
    for backend in ("torch", "jax"):
        run = tmp_path / f"run_{backend}"
        assert main(["train", str(inp), "--backend", backend, "--output", str(run)]) == 0
        captured = capsys.readouterr()
        out[backend] = captured.out
        assert "train" in captured.err  # the progress bar, on stderr
        files[backend] = sorted(p.name.replace(".npz", ".pt") for p in run.iterdir())
    torch_lines, jax_lines = out["torch"].splitlines(), out["jax"].splitlines()
    assert torch_lines[0].startswith("statistics: descriptor davg/dstd from 2 batch(es)")
    assert torch_lines[1].startswith("energy bias per type (eV): O -")
    assert torch_lines[:2] == jax_lines[:2]  # same statistics, same energy bias
    assert torch_lines[2].startswith("trained 2 steps in") and len(torch_lines) == 3
    assert _shape(out["torch"]) == _shape(out["jax"])
    assert files["torch"] == files["jax"] == ["checkpoint", "lcurve.out", "lcurve.png",
                                              "model.ckpt-2.pt", "model.ckpt.pt"]
    assert (tmp_path / "run_jax" / "checkpoint").read_text().strip() == "model.ckpt-2.npz"
    curves = {b: _lcurve(tmp_path / f"run_{b}" / "lcurve.out") for b in ("torch", "jax")}
    np.testing.assert_allclose(curves["jax"], curves["torch"], rtol=1e-6)

    # each backend resumes from the other's step-2 checkpoint and trains step 3
    for backend, other, suffix in (("torch", "jax", "npz"), ("jax", "torch", "pt")):
        ckpt = tmp_path / f"run_{other}" / f"model.ckpt-2.{suffix}"
        run = tmp_path / f"run_{backend}"
        assert main(["train", str(inp), "--backend", backend, "--output", str(run),
                     "--steps", "3", "--restart", str(ckpt)]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == (f"restarting from {ckpt} at step 2 (a {other} checkpoint: Adam "
                            "moments start afresh)")
        assert lines[1].startswith("trained 1 steps in")
        own = "pt" if backend == "torch" else "npz"
        assert (run / "checkpoint").read_text().strip() == f"model.ckpt-3.{own}"
    resumed = {b: _lcurve(tmp_path / f"run_{b}" / "lcurve.out") for b in ("torch", "jax")}
    assert resumed["torch"][-1, 0] == resumed["jax"][-1, 0] == 3
    np.testing.assert_allclose(resumed["jax"][-1], resumed["torch"][-1], rtol=1e-6)
