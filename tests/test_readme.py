"""The README's quickstart runs as written (its python blocks, in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_readme_quickstart_runs(monkeypatch, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("jax")
    import torch

    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert len(blocks) == 3, "numpy, torch and jax quickstarts"
    monkeypatch.chdir(ROOT)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespace: dict = {}
        for block in blocks:
            exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102
    finally:
        torch.set_num_threads(threads)
    assert "(1, 192, 136)" in capsys.readouterr().out
    assert namespace["coord"].grad is not None
    assert tuple(namespace["out"].descriptor.shape) == (1, 192, 136)
