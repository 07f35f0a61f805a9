"""Contenders: our numpy/torch/jax paths and deepmd-kit's dpmodel/pt/jax, on one case.

Each factory returns a :class:`Runner` whose ``call()`` runs one timed evaluation (already
warmed up; jax/compiled runners are compiled during construction and report it in
``compile_s``). Tasks: ``"forward"`` (the descriptor) and ``"force"`` (the descriptor and
the gradient of ``sum(D**2)`` with respect to the local coordinates, through the ghosts:
the work of a force). ``output()`` gives the descriptor as numpy for the parity column.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpa2_core import DPA2Config, descriptor, dump_deepmd
from dpa2_core.model.dpa2 import live_widths

from .deepmd_pt import install_stubs
from .structures import Inputs

__all__ = ["FACTORIES", "Runner", "Unavailable", "make_runner"]


class Unavailable(RuntimeError):
    """A contender that cannot run here (deepmd-kit missing, backend not installed)."""


@dataclass
class Runner:
    """One contender of one case. ``call`` is timed; ``output`` is the descriptor (numpy)."""

    name: str
    call: Callable[[], Any]
    output: Callable[[], np.ndarray]
    compile_s: float | None = None
    flops: Callable[[], float | None] = field(default=lambda: None)


def _require_deepmd() -> None:
    try:
        import deepmd  # noqa: F401
    except ImportError as err:
        raise Unavailable("deepmd-kit is not installed (pip install deepmd-kit==3.2.0)") from err


# ---------------------------------------------------------------- numpy
def ours_numpy(config: DPA2Config, params: dict, inp: Inputs, task: str, **_: Any) -> Runner:
    if task != "forward":
        raise Unavailable("numpy has no autograd: forward only")
    ce = inp.coord_ext.astype(config.dtype_name)
    ext = inp.ext

    def call():
        return descriptor(params, config, ce, ext.atype_ext, ext.nlist, ext.mapping).descriptor

    call()
    return Runner("dpa2 numpy", call, call)


def deepmd_numpy(config: DPA2Config, params: dict, inp: Inputs, task: str, **_: Any) -> Runner:
    if task != "forward":
        raise Unavailable("numpy has no autograd: forward only")
    _require_deepmd()
    from deepmd.dpmodel.descriptor.dpa2 import DescrptDPA2

    model = DescrptDPA2.deserialize(dump_deepmd(config, params))
    ce = inp.coord_ext.astype(config.dtype_name).reshape(1, -1)
    ext = inp.ext

    def call():
        return model.call(ce, ext.atype_ext, ext.nlist, ext.mapping)[0]

    call()
    return Runner("deepmd dpmodel", call, call)


# ---------------------------------------------------------------- torch
def _torch_call(fn, coord, task: str, compiled: bool):
    """Timed torch closure: forward under no_grad, or forward + d/dcoord sum(D**2)."""
    import torch

    def forward():
        with torch.no_grad():
            return fn(coord)

    def force():
        c = coord.detach().requires_grad_(True)
        d = fn(c)
        return d, torch.autograd.grad((d * d).sum(), c)[0]

    body = forward if task == "forward" else force
    if coord.device.type == "cuda":
        def call():
            out = body()
            torch.cuda.synchronize()
            return out
        return call
    return body


def _torch_runner(name: str, fn, inp: Inputs, config: DPA2Config, task: str, device: str,
                  compiled: bool) -> Runner:
    import torch

    dtype = getattr(torch, config.dtype_name)
    coord = torch.as_tensor(inp.coord, dtype=dtype, device=device)
    if compiled:
        fn = torch.compile(fn)
    call = _torch_call(fn, coord, task, compiled)
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    call()

    def output():
        with torch.no_grad():
            return fn(coord).detach().cpu().double().numpy()

    def flops():
        from torch.utils.flop_counter import FlopCounterMode

        counter = FlopCounterMode(display=False)
        with counter:
            call()
        return float(counter.get_total_flops())

    return Runner(name, call, output, first if compiled else None,
                  flops if not compiled else (lambda: None))


def _torch_ext(inp: Inputs, device: str, dtype):
    import torch

    ext = inp.ext
    ints = [torch.as_tensor(x, device=device) for x in (ext.atype_ext, ext.mapping, ext.nlist)]
    return (*ints, torch.as_tensor(ext.shift, dtype=dtype, device=device))


def ours_torch(config: DPA2Config, params: dict, inp: Inputs, task: str, *, device: str = "cpu",
               compiled: bool = False, **_: Any) -> Runner:
    import torch

    from dpa2_core.array_api import namespace
    from dpa2_core.neighbors.extension import extend_coord
    from dpa2_torch import DescrptDPA2
    from dpa2_torch.neighbors import Neighbors

    module = DescrptDPA2(config, params=params).to(device)
    dtype = getattr(torch, config.dtype_name)
    nb = Neighbors(*_torch_ext(inp, device, dtype))

    widths = None
    if compiled:  # static bounds read once from the concrete inputs, as jax's runner does
        widths = module.live_widths(torch.as_tensor(inp.coord_ext), nb.nlist)

    def fn(c):
        # the core's extend_coord with the array-API torch namespace (torch.take has no axis)
        ce = extend_coord(namespace(c), c, nb.mapping, nb.shift)
        return module(ce, nb.atype_ext, nb.nlist, nb.mapping, slot_widths=widths).descriptor

    tag = " compiled" if compiled else ""
    return _torch_runner(f"dpa2 torch{tag}", fn, inp, config, task, device, compiled)


def deepmd_torch(config: DPA2Config, params: dict, inp: Inputs, task: str, *,
                 device: str = "cpu", compiled: bool = False, **_: Any) -> Runner:
    _require_deepmd()
    import torch

    install_stubs()
    try:
        from deepmd.pt.model.descriptor.dpa2 import DescrptDPA2
    except Exception as err:  # noqa: BLE001 - a message, not a crash
        raise Unavailable(f"deepmd.pt does not import: {err!r}") from err
    model = DescrptDPA2.deserialize(dump_deepmd(config, params)).to(device)
    dtype = getattr(torch, config.dtype_name)
    atype_ext, mapping, nlist, shift = _torch_ext(inp, device, dtype)
    safe = torch.where(mapping >= 0, mapping, 0)

    def fn(c):
        ce = torch.gather(c, 1, safe[..., None].expand(-1, -1, 3)) + shift
        return model(ce.reshape(1, -1), atype_ext, nlist, mapping)[0]

    tag = " compiled" if compiled else ""
    return _torch_runner(f"deepmd pt{tag}", fn, inp, config, task, device, compiled)


# ---------------------------------------------------------------- jax
def _jax_runner(name: str, jitted, args: tuple, task: str, out_of) -> Runner:
    import jax

    start = time.perf_counter()
    compiled = jitted.lower(*args).compile()
    compile_s = time.perf_counter() - start

    def call():
        return jax.block_until_ready(compiled(*args))

    call()

    def flops():
        cost = compiled.cost_analysis()
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost.get("flops", float("nan"))) if cost else None

    return Runner(name, call, lambda: np.asarray(out_of(call()), dtype=np.float64),
                  compile_s, flops)


def ours_jax(config: DPA2Config, params: dict, inp: Inputs, task: str, **_: Any) -> Runner:
    try:
        import jax
        import jax.numpy as jnp

        import dpa2_jax as dj
    except ImportError as err:
        raise Unavailable("jax is not installed") from err
    jax.config.update("jax_enable_x64", True)
    from dpa2_jax.descriptor import JIT_BLOCKS, JIT_MULTIPLE
    from dpa2_jax.model import extend_coord

    jp = dj.to_jax(params)
    ext = dj.Extension(*(jnp.asarray(x) for x in inp.ext))
    ext = ext._replace(shift=ext.shift.astype(config.dtype_name))
    coord = jnp.asarray(inp.coord, dtype=config.dtype_name)
    # the static bounds on the slots in use, read once from the concrete inputs and params
    # (what jit_descriptor does): the compiled program cuts the empty trailing slots
    widths = live_widths(np, config, params, np.asarray(extend_coord(coord, ext)),
                         np.asarray(ext.nlist), JIT_MULTIPLE, JIT_BLOCKS)

    def desc(c, p):
        return dj.descriptor(p, config, extend_coord(c, ext), ext.atype_ext, ext.nlist,
                             ext.mapping, slot_widths=widths).descriptor

    if task == "forward":
        return _jax_runner("dpa2 jax", jax.jit(desc), (coord, jp), task, lambda o: o)

    def scalar(c, p):
        d = desc(c, p)
        return jnp.sum(d * d), d

    fn = jax.jit(jax.value_and_grad(scalar, has_aux=True))
    return _jax_runner("dpa2 jax", fn, (coord, jp), task, lambda o: o[0][1])


def deepmd_jax(config: DPA2Config, params: dict, inp: Inputs, task: str, **_: Any) -> Runner:
    _require_deepmd()
    import jax
    import jax.numpy as jnp

    try:
        from deepmd.jax.descriptor.dpa2 import DescrptDPA2
        from deepmd.jax.env import nnx
    except Exception as err:  # noqa: BLE001 - a message, not a crash
        raise Unavailable(f"deepmd.jax does not import: {err!r}") from err
    model = DescrptDPA2.deserialize(dump_deepmd(config, params))
    ext = inp.ext
    atype_ext, mapping, nlist = (jnp.asarray(x) for x in (ext.atype_ext, ext.mapping,
                                                           ext.nlist))
    shift = jnp.asarray(ext.shift, dtype=config.dtype_name)
    safe = jnp.where(mapping >= 0, mapping, 0)
    coord = jnp.asarray(inp.coord, dtype=config.dtype_name)
    graph, state = nnx.split(model)

    def desc(c, st):
        m = nnx.merge(graph, st)
        ce = jnp.take_along_axis(c, safe[..., None], axis=1) + shift
        return m.call(ce.reshape(1, -1), atype_ext, nlist, mapping)[0]

    if task == "forward":
        return _jax_runner("deepmd jax", jax.jit(desc), (coord, state), task, lambda o: o)

    def scalar(c, st):
        d = desc(c, st)
        return jnp.sum(d * d), d

    fn = jax.jit(jax.value_and_grad(scalar, has_aux=True))
    return _jax_runner("deepmd jax", fn, (coord, state), task, lambda o: o[0][1])


#: backend -> (ours, deepmd-kit's)
FACTORIES = {
    "numpy": (ours_numpy, deepmd_numpy),
    "torch": (ours_torch, deepmd_torch),
    "jax": (ours_jax, deepmd_jax),
}


def make_runner(backend: str, who: str, config: DPA2Config, params: dict, inp: Inputs,
                task: str, **options: Any) -> Runner:
    """``who``: "ours" or "deepmd"; ``options``: device, compiled (torch)."""
    ours, theirs = FACTORIES[backend]
    return (ours if who == "ours" else theirs)(config, params, inp, task, **options)
