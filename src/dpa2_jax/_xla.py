"""The one XLA setting this package changes, applied on import (before JAX's backend starts).

jaxlib 0.10.2's CPU backend runs float64 matrix products through YNNPACK; its kernel
``ynn::dot_fp64_1x32x1_1x8x1_avx512`` intermittently reads out of bounds and kills the
process with SIGSEGV (seen in training steps of this package: about 4 runs in 5 of
``examples/jax_train.py`` crashed, 0 of 8 with the kernel off). Turning the YNN fusions
off also made the float64 descriptor faster here (forward 0.22 -> 0.10 s, forces
0.31 -> 0.21 s on the 192-atom water frame). Opt out with ``DPA2_JAX_KEEP_XLA_FLAGS=1``
or by setting ``--xla_cpu_experimental_ynn_fusion_type`` in ``XLA_FLAGS`` yourself.
"""

from __future__ import annotations

import os
import warnings

__all__ = ["disable_ynn_dot", "FLAG"]

FLAG = "--xla_cpu_experimental_ynn_fusion_type="


def _backend_started() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - jax internals moved
        return False
    started = getattr(xla_bridge, "backends_are_initialized", None)
    return bool(started()) if started is not None else False


def disable_ynn_dot() -> bool:
    """Append :data:`FLAG` to ``XLA_FLAGS`` unless opted out; True if it was added."""
    flags = os.environ.get("XLA_FLAGS", "")
    if os.environ.get("DPA2_JAX_KEEP_XLA_FLAGS") or "ynn_fusion_type" in flags:
        return False
    os.environ["XLA_FLAGS"] = f"{flags} {FLAG}".strip()
    if _backend_started():
        warnings.warn("dpa2_jax was imported after JAX started its CPU backend, so the "
                      "YNNPACK float64 workaround (see dpa2_jax._xla) is not active; import "
                      "dpa2_jax first or set XLA_FLAGS=" + FLAG, RuntimeWarning, stacklevel=3)
    return True
