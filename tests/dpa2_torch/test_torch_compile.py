"""torch.compile (fullgraph) and torch.export give eager's numbers; double backward works."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_dict
from torch_helpers import (
    MATRIX,
    ext_inputs,
    one_thread,  # noqa: F401  (autouse fixture)
    structure,
    tiny_module,
)

import dpa2_core as dc
from dpa2_torch import DescrptDPA2, EnergyModel


def _two_frames(config):
    """Two periodic frames (nall > nloc > 1, nf > 1: no 0/1 specialisation in export)."""
    coord, atype, box = structure("triclinic", n=12)
    coord = np.concatenate([coord, coord + 0.05])
    return ext_inputs(config, coord, np.concatenate([atype, atype]), np.concatenate([box, box]))


def test_compile_fullgraph_inductor_matches_eager():
    """Inductor on CPU; the smallest layer set keeps a cold compile short."""
    torch._dynamo.reset()
    cfg = tiny_dict(repformer={"nlayers": 1, "update_g1_has_attn": False,
                               "update_g2_has_attn": False, "update_g2_has_g1g1": False})
    m = DescrptDPA2(cfg)
    args = ext_inputs(m.config, *structure("triclinic", n=12))
    ref = m(*args)
    out = torch.compile(m, fullgraph=True)(*args)
    for x, y in zip(out, ref, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_compile_fullgraph_forces_match_eager():
    """Compiled forward + compiled backward (AOTAutograd): the same coordinate gradient."""
    torch._dynamo.reset()
    m = tiny_module("three_body_strip_residual")
    coord_ext, *rest = ext_inputs(m.config, *structure("triclinic", n=12))
    grads = []
    for fn in (m, torch.compile(m, fullgraph=True, backend="aot_eager")):
        c = coord_ext.clone().requires_grad_(True)
        out = fn(c, *rest)
        grads.append(torch.autograd.grad(out.descriptor.square().sum(), c)[0])
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_export_dynamic_shapes():
    """One exported program serves other frame, atom and ghost counts."""
    from torch.export import Dim

    m = tiny_module()
    args = _two_frames(m.config)
    nf, nall, nloc = Dim("nf"), Dim("nall"), Dim("nloc")
    shapes = ({0: nf, 1: nall}, {0: nf, 1: nall}, {0: nf, 1: nloc}, {0: nf, 1: nall})
    program = torch.export.export(m, args, dynamic_shapes=shapes)
    coord, atype, box = structure("triclinic", n=15, seed=4)
    other = ext_inputs(m.config, np.concatenate([coord] * 3), np.concatenate([atype] * 3),
                       np.concatenate([box] * 3))
    for x, y in zip(program.module()(*other), m(*other), strict=True):
        torch.testing.assert_close(x, y, rtol=1e-12, atol=1e-12)


def test_exported_energy_gives_autograd_forces():
    """Export the energy; forces come from autograd through the exported module."""
    model = EnergyModel(tiny_module(), {"neuron": (8, 8)})

    class Energy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, coord_ext, atype_ext, nlist, mapping):
            return self.model.energy_lower(coord_ext, atype_ext, nlist, mapping)

    args = _two_frames(model.config)
    exported = torch.export.export(Energy(), args).module()
    forces = []
    for fn in (Energy(), exported):
        c = args[0].clone().requires_grad_(True)
        forces.append(-torch.autograd.grad(fn(c, *args[1:]).sum(), c)[0])
    torch.testing.assert_close(forces[1], forces[0], rtol=1e-12, atol=1e-12)


def test_double_backward_reaches_every_parameter():
    """Force training: d(sum F^2)/d(theta) is non-zero for every descriptor parameter
    (a constant energy shift such as the last fitting bias has no force, so the
    fitting net is checked with an energy term added)."""
    for name in ("default", "three_body_strip_residual"):
        model = EnergyModel(tiny_module(name), {"neuron": (8, 8)}).train()
        coord, atype, box = structure("triclinic", n=12)
        out = model(*(torch.from_numpy(x) for x in (coord, atype, box)))
        out["force"].square().sum().backward(retain_graph=True)
        for pname, p in model.descriptor.named_parameters():
            assert p.grad is not None and p.grad.square().sum() > 0, (name, pname)
        out["energy"].sum().backward()
        for pname, p in model.fitting.named_parameters():
            assert p.grad is not None and p.grad.square().sum() > 0, (name, pname)


def test_force_without_create_graph_cannot_train():
    model = EnergyModel(tiny_module(), {"neuron": (8, 8)}).eval()
    coord, atype, box = structure("triclinic", n=12)
    out = model(*(torch.from_numpy(x) for x in (coord, atype, box)))
    assert not out["force"].requires_grad
    with pytest.raises(RuntimeError):
        out["force"].sum().backward()


def _force_training_grads(model, seed: int, virial: bool) -> list[torch.Tensor]:
    coord, atype, box = (torch.from_numpy(x) for x in structure("triclinic", 12, seed))
    model.zero_grad()
    out = model(coord, atype, box, virial=virial)
    (out["energy"].square().sum() * 1e-3 + out["force"].square().sum()).backward()
    return [out["energy"], out["force"]] + [p.grad.clone() for p in model.parameters()
                                            if p.requires_grad]


def test_compiled_force_training_matches_eager():
    """Force training three ways gives the same energy, force and parameter gradients:
    autograd.grad(create_graph=True) (virial=True), the functional torch.func.grad path
    (virial=False, eager), and compile_forces (compiled graphs). A frame with another
    ghost count reuses the compiled graph (nall is dynamic)."""
    torch._dynamo.reset()
    model = EnergyModel(tiny_module(), {"neuron": (8, 8)}).train()
    seeds = (1, 5)
    autograd = [_force_training_grads(model, s, virial=True) for s in seeds]
    functional = [_force_training_grads(model, s, virial=False) for s in seeds]
    model.compile_forces(backend="aot_eager")
    compiled = [_force_training_grads(model, s, virial=False) for s in seeds]
    model.compile_forces(off=True)
    for ref, *others in zip(autograd, functional, compiled, strict=True):
        for other in others:
            for x, y in zip(ref, other, strict=True):
                torch.testing.assert_close(y, x, rtol=1e-12, atol=1e-14)


def test_compiled_forces_cut_to_the_widest_bound_seen():
    """compile_forces runs the program cut to the static slot bounds (silent statistics:
    repinit and three-body are cut too) with eager's numbers; a structure needing fewer
    slots keeps the bound, so the program is not recompiled for it."""
    torch._dynamo.reset()
    config = dc.DPA2Config.from_dict(MATRIX["three_body_strip_residual"])
    params = dc.init_params(config, 2)
    for block in ("repinit", "three_body", "repformer"):  # davg zero: cut slots are silent
        params[block]["davg"] = np.zeros_like(params[block]["davg"])
    model = EnergyModel(DescrptDPA2(config, params=params), {"neuron": (8, 8)}).eval()
    frames = [tuple(torch.from_numpy(x) for x in structure("triclinic", 12, seed))
              for seed in (1, 5)]
    eager = [model(*f, virial=False) for f in frames]
    model.compile_forces(backend="aot_eager")
    widths = []
    for f, ref in zip(frames, eager, strict=True):
        out = model(*f, virial=False)
        widths.append(model.compiled_widths)
        for key in ("energy", "force"):
            torch.testing.assert_close(out[key], ref[key], rtol=1e-12, atol=1e-13)
    model.compile_forces(off=True)
    nsel = (config.repinit.nsel, config.repinit.three_body_sel, config.repformer.nsel)
    assert all(w < n for w, n in zip(widths[0], nsel, strict=True)), (widths, nsel)
    assert all(b >= a for a, b in zip(*widths, strict=True)), widths
