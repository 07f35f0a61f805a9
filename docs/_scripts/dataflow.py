"""Draw the DPA-2 data-flow figure of docs/math.md from the code, not by hand.

Every shape in the figure is read from the library: the inputs from
``build_neighbor_list`` on the bundled water frame, the parameter shapes from
``param_spec``, the outputs from an actual ``descriptor`` call. Which boxes exist
follows the config's flags. Run by ``docs/conf.py`` at build time, or by hand:

    python docs/_scripts/dataflow.py docs/_generated/dataflow.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

import dpa2_core as dc  # noqa: E402

__all__ = ["dataflow_nodes", "draw"]

XSTEP = 1.75  # column spacing in axis units (boxes are 1.6 wide)
COLORS = {"input": "#dbe9f6", "block": "#fde7c8", "glue": "#e4f2dc", "output": "#f2dce9"}


def _shape(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def dataflow_nodes(preset: str = "medium"):
    """Nodes ``{name: (column, row, kind, title, detail)}`` and edges of the figure."""
    config = dc.presets.preset(preset)
    coord, atype, box, _ = dc.presets.water_frame()
    coord_ext, atype_ext, mapping, nlist = dc.build_neighbor_list(coord, atype, config, box)
    params = dc.init_params(config, seed=0)
    out = dc.descriptor(params, config, coord_ext, atype_ext, nlist, mapping)
    spec = dc.param_spec(config)
    ri, rf = config.repinit, config.repformer
    nf, nloc = nlist.shape[:2]
    table = spec["type_embedding"][0]["w"].shape
    emb = [layer["w"].shape for layer in spec["repinit"]["embedding"]]
    layer0 = spec["repformer"]["layers"][0]
    nodes = {
        "coord": (0, 0, "input", "coord_ext, atype_ext, mapping",
                  f"{_shape(coord_ext.shape)}, {_shape(atype_ext.shape)}, {_shape(mapping.shape)}"),
        "nlist": (1, 0, "input", "nlist (sorted, §3)", _shape(nlist.shape)),
        "tebd": (2, 0, "block", "type embedding (§6)",
                 f"W {_shape(table)} -> table ({config.ntypes + 1}, {ri.tebd_dim})"),
        "repinit": (0, 1, "block", f"repinit (§7), S_i={ri.nsel}, rcut={ri.rcut}",
                    f"R {_shape((nf, nloc, ri.nsel, 4))}; net "
                    + " -> ".join(str(w[1]) for w in [(0, emb[0][0])] + emb)
                    + f"\nG {_shape((nf, nloc, ri.nsel, emb[-1][1]))} -> "
                    f"{_shape((nf, nloc, emb[-1][1] * ri.axis_neuron))}"),
    }
    edges = [("coord", "repinit"), ("nlist", "repinit"), ("tebd", "repinit")]
    if ri.use_three_body:
        s3, ng3 = ri.three_body_sel, ri.three_body_neuron[-1]
        nodes["three_body"] = (1, 1, "block", f"three-body (§8), S_3={s3}",
                               f"e {_shape((nf, nloc, s3, s3))} -> {_shape((nf, nloc, ng3))}")
        edges += [("coord", "three_body"), ("nlist", "three_body"), ("tebd", "three_body")]
    g1d = rf.g1_dim
    shape_t = spec.get("g1_shape_transform", {}).get("w")
    glue = f"concat {_shape((nf, nloc, ri.out_dim))}"
    glue += f"; W {_shape(shape_t.shape)}" if shape_t is not None else "; identity"
    if config.add_tebd_to_repinit_out:
        glue += " + tebd_transform"
    nodes["glue"] = (0.5, 2, "glue", "glue (§9) -> g1", f"{glue}\n-> {_shape((nf, nloc, g1d))}")
    edges += [("repinit", "glue")] + ([("three_body", "glue")] if ri.use_three_body else [])
    terms = [name for name in ("g1_self_mlp", "proj_g1g2", "linear1", "loc_attn", "linear2",
                               "proj_g1g1g2", "attn2g_map", "attn2_mh_apply", "attn2_ev_apply")
             if name in layer0]
    nodes["init"] = (1.5, 2, "block", "repformer input (§10.1)",
                     f"g2 {_shape((nf, nloc, rf.nsel, rf.g2_dim))}, "
                     f"h2 {_shape((nf, nloc, rf.nsel, 3))}")
    edges += [("coord", "init"), ("nlist", "init")]
    nodes["layers"] = (1, 3, "block", f"{rf.nlayers} repformer layers (§10.4)",
                       f"{rf.update_style}, S_f={rf.nsel}, rcut={rf.rcut}; terms:"
                       f"\n{', '.join(terms[:4])}\n{', '.join(terms[4:])}"
                       f"\nlinear1 W {_shape(layer0['linear1']['w'].shape)}")
    edges += [("glue", "layers"), ("init", "layers")]
    nodes["out"] = (1, 4, "output", "DescriptorOutput (§2)",
                    f"descriptor {_shape(out.descriptor.shape)}, "
                    f"rot_mat {_shape(out.rot_mat.shape)}"
                    f"\ng2 {_shape(out.g2.shape)}, h2 {_shape(out.h2.shape)}"
                    f"\nsw {_shape(out.sw.shape)}")
    edges += [("layers", "out"), ("tebd", "out")]
    return nodes, edges, preset


def draw(path: str | Path, preset: str = "medium") -> Path:
    """Write the figure to ``path`` (PNG) and return it."""
    nodes, edges, name = dataflow_nodes(preset)
    fig, ax = plt.subplots(figsize=(13, 7.5))
    ax.set_xlim(-0.9, 2 * XSTEP + 0.9)
    ax.set_ylim(4.5, -0.5)
    ax.axis("off")
    half_w, half_h = 0.8, 0.36
    for col, row, kind, title, detail in nodes.values():
        col = col * XSTEP
        ax.add_patch(FancyBboxPatch((col - half_w, row - half_h), 2 * half_w, 2 * half_h,
                                    boxstyle="round,pad=0.02", fc=COLORS[kind], ec="#555"))
        ax.text(col, row - 0.25, title, ha="center", va="center", fontsize=10,
                fontweight="bold")
        ax.text(col, row + 0.1, detail, ha="center", va="center", fontsize=8,
                family="monospace")
    for a, b in edges:
        (xa, ya), (xb, yb) = nodes[a][:2], nodes[b][:2]
        xa, xb = xa * XSTEP, xb * XSTEP
        ax.add_patch(FancyArrowPatch((xa, ya + half_h), (xb, yb - half_h), arrowstyle="-|>",
                                     mutation_scale=12, color="#777",
                                     connectionstyle=f"arc3,rad={-0.35 if yb - ya > 2 else 0}",
                                     shrinkA=2, shrinkB=2))
    ax.set_title(f'DPA-2 data flow, preset "{name}", one 192-atom water frame '
                 "(shapes read from the code)", fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


if __name__ == "__main__":
    print(draw(sys.argv[1] if len(sys.argv) > 1 else "docs/_generated/dataflow.png"))
