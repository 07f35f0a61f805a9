"""The core stays pure: no torch/jax imports, no in-place array updates, no value branching."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "src" / "dpa2_core"
# Modules whose functions run on traced arrays (host-side I/O and config code may mutate
# plain Python containers freely).
MATH = [CORE / f"{name}.py" for name in (
    "_compat", "activations", "nn", "env_mat", "type_embedding", "repinit", "attention",
    "repformer", "descriptor", "inputs", "fitting")]


def test_importing_the_core_imports_no_backend():
    code = ("import sys, dpa2_core; bad = [m for m in ('torch', 'jax') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("path", MATH, ids=lambda p: p.name)
def test_no_backend_imports_or_inplace_updates(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            assert not any(n.split(".")[0] in ("torch", "jax", "jaxlib") for n in names), (
                f"{path.name}:{node.lineno} imports a backend")
        if isinstance(node, ast.Assign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                assert not isinstance(t, ast.Subscript), (
                    f"{path.name}:{node.lineno}: item assignment (in-place update)")
        assert not isinstance(node, ast.AugAssign), (
            f"{path.name}:{node.lineno}: augmented assignment (in-place on arrays)")
