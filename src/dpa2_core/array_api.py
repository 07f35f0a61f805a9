"""The public array helpers of the core, and the one ``Array`` alias (shims import these).

Implemented in :mod:`dpa2_core._compat`, the one module that knows about particular
array namespaces.
"""

from __future__ import annotations

from ._compat import (
    Array,
    Namespace,
    device,
    gather_rows,
    is_traced,
    namespace,
    numpy_dtype,
    to_numpy,
)

__all__ = ["Array", "Namespace", "device", "gather_rows", "is_traced", "namespace",
           "numpy_dtype", "to_numpy"]
