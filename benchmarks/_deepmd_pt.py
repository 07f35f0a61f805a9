"""Run deepmd-kit's ``dp --pt`` beside torch 2.13 (benchmarks only, never the test suite).

deepmd-kit 3.2.0's PyTorch backend refuses to import here for two reasons that do not
touch a DPA-2 training run: its custom-op library was built for torch 2.11 (loading it
fails; DPA-2 without compression never calls those ops) and ``e3nn`` (used only by
other descriptors) is not installed. Both modules are replaced by inert stand-ins
before deepmd is imported; everything deepmd-kit computes is its own code.

    python benchmarks/_deepmd_pt.py train input.json
"""

from __future__ import annotations

import sys
import types


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
    ops = types.ModuleType("deepmd.pt.cxx_op")
    ops.ENABLE_CUSTOMIZED_OP = False
    sys.modules["deepmd.pt.cxx_op"] = ops
    for name in ("e3nn", "e3nn.o3", "e3nn.nn", "e3nn.util", "e3nn.util.jit", "e3nn.math"):
        sys.modules[name] = _module(name)


if __name__ == "__main__":
    install_stubs()
    from deepmd.pt.entrypoints.main import main

    main(sys.argv[1:])
