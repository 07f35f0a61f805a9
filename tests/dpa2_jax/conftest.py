"""JAX test settings (x64, debug NaNs, strict dtype promotion) and shared helpers.

pytest imports this file as ``conftest``, shadowing ``tests/conftest.py`` for
``from conftest import ...``; every public name of that file is therefore re-exported
here, and the helpers of these tests live beside them.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT))
_spec = importlib.util.spec_from_file_location("_dpa2_tests_root_conftest", _ROOT / "conftest.py")
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
globals().update({k: v for k, v in vars(_root).items() if not k.startswith("__")
                  and k not in ("structure", "to_backend")})  # fixtures stay registered once

jax = pytest.importorskip("jax")
import jax.numpy as jnp  # noqa: E402

STRUCTURES = _root.STRUCTURES
tiny_dict = _root.tiny_dict
random_stats = _root.random_stats


@pytest.fixture(autouse=True)
def strict_jax():
    """float64 available, NaNs raise where they appear, no implicit dtype promotion."""
    with jax.enable_x64(True), jax.debug_nans(True), jax.numpy_dtype_promotion("strict"):
        yield


def rel_err(a, b) -> float:
    """max|a - b| / max|b| (b the reference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


def assert_outputs_close(ours, ref, rtol: float) -> None:
    """Every one of the five descriptor outputs within ``rtol`` (relative to max|ref|)."""
    for name, a, b in zip(("descriptor", "rot_mat", "g2", "h2", "sw"), ours, ref, strict=True):
        assert np.shape(a) == np.shape(b), name
        err = rel_err(a, b)
        assert err <= rtol, f"{name}: relative error {err:.2e} > {rtol:.0e}"


def small_water(nframes: int = 1):
    """The shared water frames (192 atoms, periodic): coord, atype, box (numpy)."""
    return _root.water_frames(0, tuple(range(nframes)))


def jax_inputs(ce, ae, nl, mp):
    return tuple(jnp.asarray(x) for x in (ce, ae, nl, mp))
