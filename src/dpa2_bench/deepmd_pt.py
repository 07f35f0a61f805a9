"""Import deepmd-kit's PyTorch backend beside torch 2.13 (benchmarks only, never the tests).

deepmd-kit 3.2.0's ``deepmd.pt`` refuses to import here for two reasons that do not
touch DPA-2: its custom-op library was built for torch 2.11 (DPA-2 without compression
never calls those ops) and ``e3nn`` (used only by other descriptors) is not installed.
:func:`install_stubs` puts inert stand-ins for both into ``sys.modules`` before deepmd is
imported; everything deepmd-kit computes is its own code.
"""

from __future__ import annotations

import sys
import types

__all__ = ["install_stubs"]


class _Inert:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs) -> _Inert:
        return _Inert()

    def __getattr__(self, name: str) -> _Inert:
        return _Inert()


def _module(name: str) -> types.ModuleType:
    module = types.ModuleType(name)
    module.__getattr__ = lambda attr: _Inert
    module.__path__ = []
    module.__file__ = __file__  # inspect (torch.compile's import scan) reads it
    return module


def install_stubs() -> None:
    """Stand-ins for ``deepmd.pt.cxx_op`` and ``e3nn`` (idempotent)."""
    if "deepmd.pt.cxx_op" in sys.modules and "e3nn" in sys.modules:
        return
    ops = types.ModuleType("deepmd.pt.cxx_op")
    ops.ENABLE_CUSTOMIZED_OP = False
    sys.modules["deepmd.pt.cxx_op"] = ops
    for name in ("e3nn", "e3nn.o3", "e3nn.nn", "e3nn.util", "e3nn.util.jit", "e3nn.math"):
        sys.modules[name] = _module(name)
