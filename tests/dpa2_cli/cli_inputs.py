"""Inputs of the command tests: model files of every kind and damaged inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from conftest import tiny_input
from oracle import MODEL_DP, WATER

__all__ = ["make_files", "train_checkpoints"]


def make_files(root: Path) -> dict[str, Path]:
    """Paths of good and bad inputs, written under ``root``."""
    out: dict[str, Path] = {"dp": MODEL_DP, "system": WATER / "data_0", "water": WATER}
    (root / "empty.xyz").write_text("")
    out["empty_xyz"] = root / "empty.xyz"
    (root / "corrupt.dp").write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 40)
    out["corrupt_dp"] = root / "corrupt.dp"
    (root / "notmodel.dp").write_text("this is not a model\n")
    out["text_dp"] = root / "notmodel.dp"
    (root / "corrupt.xyz").write_text("2\ncomment\nO 0.0 0.0 0.0\nH garbage 0.0 0.0\n")
    out["corrupt_xyz"] = root / "corrupt.xyz"
    (root / "POSCAR").write_text("water\n1.0\n5 0 0\n0 5 0\n0 0 5\nO H\n1 2\nDirect\n"
                                 "0 0 0\n0.1 0.1\n0.2 0.2 0.2\n")
    out["corrupt_poscar"] = root / "POSCAR"
    (root / "cu.xyz").write_text("2\nProperties=species:S:1:pos:R:3\nCu 0 0 0\nO 1.5 0 0\n")
    out["copper"] = root / "cu.xyz"
    (root / "water.xyz").write_text("3\nProperties=species:S:1:pos:R:3\nO 0 0 0\n"
                                    "H 0.96 0 0\nH -0.24 0.93 0\n")
    out["molecule"] = root / "water.xyz"
    out["missing"] = root / "does_not_exist.xyz"
    out["input"] = tiny_input(root, steps=2)
    np.savez(root / "descriptor_out.npz", descriptor=np.zeros((1, 2, 3)))
    out["describe_npz"] = root / "descriptor_out.npz"
    import dpa2_core as dc

    config, params = dc.load_deepmd(MODEL_DP)
    dc.save(root / "own.npz", config, params)
    out["own_npz"] = root / "own.npz"
    (root / "plain.json").write_text(json.dumps({"hello": 1}))
    out["plain_json"] = root / "plain.json"
    return out


_CHECKPOINTS: list[tuple[Path, Path]] = []


def train_checkpoints(root: Path, seed: int = 3) -> tuple[Path, Path]:
    """A torch and a jax ``dpa2 train`` checkpoint of the same fresh model of
    :func:`conftest.tiny_input` (written by the trainers' own savers, no training step);
    written once per session (under the first ``root``), then reused."""
    if not _CHECKPOINTS:
        _CHECKPOINTS.append(_write_checkpoints(root, seed))
    return _CHECKPOINTS[0]


def _write_checkpoints(root: Path, seed: int) -> tuple[Path, Path]:
    import torch

    import dpa2_core as dc
    from dpa2_core.training.settings import TrainInput
    from dpa2_jax.model import from_record
    from dpa2_jax.training.checkpoint import save_checkpoint as save_jax
    from dpa2_jax.training.trainer import model_config, optimizer
    from dpa2_torch.training.checkpoint import build_model
    from dpa2_torch.training.checkpoint import save_checkpoint as save_torch

    inp = TrainInput.from_file(tiny_input(root, steps=2, seed=seed))
    torch.manual_seed(seed)
    model = build_model(inp.settings)
    with torch.no_grad():
        model.out_bias.copy_(torch.tensor([-93.5, -187.1], dtype=model.out_bias.dtype))
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad])
    torch_path = save_torch(root / "torch.ckpt-5.pt", model, opt, 5, inp.raw)
    import jax

    jax.config.update("jax_enable_x64", True)
    config, params = from_record(dc.io.load_model(torch_path))
    assert config.fitting == model_config(inp).fitting
    jax_path = save_jax(root, "jax.ckpt", 7, params, optimizer().init(params), config)
    return torch_path, jax_path
