"""Generate the configuration reference from the code, so it cannot drift.

* The descriptor keys come from the dataclasses ``DPA2Config``, ``RepinitConfig`` and
  ``RepformerConfig``: name, annotation and default from ``dataclasses.fields``, the
  meaning from each field's docstring (the string right below the field, which
  autodoc reads too). A field without a docstring fails the build.
* The ``dpa2`` command's options, one table per sub-command, from the parser itself
  (``dpa2_cli.main.build_parser``): option strings, argument, default and help text.
* The training-input keys are the keys ``dpa2 train`` accepts, asked from the reader
  itself (``dpa2_core.training.settings``): each section is fed an unknown key and
  the "supported: [...]" list of the error it raises is read back. Defaults come
  from the settings dataclasses where a key is a field; whether a key is accepted
  only at deepmd-kit's default, or accepted without numeric effect, from the
  reader's own tables. Their meanings live in :data:`TRAIN_KEY_DOCS` below; a key
  the reader accepts but that has no meaning there fails the build.

``write_all(folder)`` writes ``config_descriptor.md`` and ``config_training.md``,
which ``docs/reference/config.md`` includes, and ``cli_<command>.md`` for every
sub-command, which ``docs/guides/cli.md`` includes. ``docs/conf.py`` calls it on every
build; ``tests/test_docs.py`` calls the same functions.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import json
import re
from pathlib import Path
from typing import Any

__all__ = [
    "TRAIN_KEY_DOCS",
    "cli_commands",
    "cli_markdown",
    "cli_options",
    "descriptor_fields",
    "descriptor_markdown",
    "field_docs",
    "training_keys",
    "training_markdown",
    "write_all",
]


def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a dataclass, from the string literal below each field."""
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs = {}
    for prev, node in zip(body, body[1:], strict=False):
        if (isinstance(prev, ast.AnnAssign) and isinstance(prev.target, ast.Name)
                and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)):
            docs[prev.target.id] = " ".join(node.value.value.split())
    return docs


def _default(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        value = f.default_factory()  # type: ignore[misc]
    else:
        return "required"
    # as it is written in a JSON input (true, null, lists)
    return f"`{json.dumps(_plain(value))}`"


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def descriptor_fields() -> dict[str, list[tuple[str, str, str, str]]]:
    """``{section: [(key, type, default, meaning)]}`` for the three config dataclasses."""
    import dpa2_core

    out = {}
    for section, cls in (("descriptor", dpa2_core.DPA2Config),
                         ("repinit", dpa2_core.RepinitConfig),
                         ("repformer", dpa2_core.RepformerConfig)):
        docs = field_docs(cls)
        rows = []
        for f in dataclasses.fields(cls):
            if f.name not in docs:
                raise RuntimeError(f"{cls.__name__}.{f.name}: no field docstring; document it "
                                   "in the dataclass (the string literal below the field)")
            rows.append((f.name, str(f.type), _default(f), docs[f.name]))
        out[section] = rows
    return out


def descriptor_markdown() -> str:
    """The descriptor tables (Markdown), one per dataclass."""
    titles = {
        "descriptor": ("`DPA2Config`: the `descriptor` section",
                       "The top level of the `\"descriptor\"` section of a deepmd-kit input "
                       "(`\"type\": \"dpa2\"` is accepted and ignored)."),
        "repinit": ("`RepinitConfig`: `descriptor.repinit`",
                    "The repinit block and its optional three-body part ({ref}`sec-7`, "
                    "{ref}`sec-8`)."),
        "repformer": ("`RepformerConfig`: `descriptor.repformer`",
                      "The repformer layers ({ref}`sec-10`)."),
    }
    parts = []
    for section, rows in descriptor_fields().items():
        title, intro = titles[section]
        parts += [f"## {title}", "", intro, "", "| key | type | default | meaning |",
                  "|---|---|---|---|"]
        parts += [f"| `{k}` | `{_cell(t)}` | {_cell(d)} | {_cell(m)} |" for k, t, d, m in rows]
        parts.append("")
    return "\n".join(parts)


# Meanings of the training-input keys. The reader decides which keys exist; a key it
# accepts must have an entry here (the build fails otherwise); entries for keys it does
# not accept are not shown.
TRAIN_KEY_DOCS: dict[str, dict[str, str]] = {
    "input": {
        "model": "The model: type map, descriptor, fitting net.",
        "learning_rate": "The learning-rate schedule.",
        "loss": "The loss and its prefactors.",
        "training": "Steps, output, checkpoints and data.",
    },
    "model": {
        "type_map": "Element names, in type order (required).",
        "descriptor": "The DPA-2 descriptor, see the tables above (required).",
        "fitting_net": "The energy fitting net (required).",
        "type": "Model type; only `\"standard\"`.",
        "data_stat_nbatch": "Batches per training system used for the statistics "
                            "(`davg`/`dstd`, energy bias); default 10.",
        "pair_exclude_types": "Model-level pair exclusion; only empty.",
        "atom_exclude_types": "Model-level atom exclusion; only empty.",
        "preset_out_bias": "Preset energy bias; only empty.",
        "info": "Free-form information.",
        "model_branch_alias": "Multi-task bookkeeping.",
        "bridging_method": "Short-range bridging (deepmd-kit pair tables); bookkeeping here.",
        "bridging_r_inner": "See `bridging_method`.",
        "bridging_r_outer": "See `bridging_method`.",
        "data_stat_protect": "Floor of the statistics' standard deviation.",
        "data_bias_nsample": "Samples of the bias statistics.",
        "srtab_add_bias": "Bias handling with a pair table.",
    },
    "fitting_net": {
        "type": "Fitting type; only `\"ener\"` (energy).",
        "neuron": "Hidden-layer widths of the fitting net; default `[120, 120, 120]`.",
        "resnet_dt": "Learned timestep on the residual branches; default `true`.",
        "activation_function": "Activation of the hidden layers; default `\"tanh\"`.",
        "precision": "Dtype of the fitting net; must equal the descriptor's.",
        "seed": "Seed of the fitting net's fresh parameters (default: training seed + 1).",
        "trainable": "Train the fitting net: one bool, or one per layer (all equal).",
        "rcond": "Cut-off ratio of the least-squares energy bias (deepmd's `rcond`).",
        "use_aparam_as_mask": "Atomic parameters as a mask; needs `numb_aparam`, so inert.",
        "numb_fparam": "Frame parameters; only 0.",
        "numb_aparam": "Atomic parameters; only 0.",
        "dim_case_embd": "Case (multi-task) embedding; only 0.",
        "atom_ener": "Fixed atomic energies; only empty.",
        "default_fparam": "Default frame parameters; only `null`.",
        "layer_name": "Shared-layer names; only `null`.",
    },
    "learning_rate": {
        "type": "Schedule; only `\"exp\"` (stepwise exponential decay).",
        "start_lr": "Learning rate at step 0 (after warmup); default 1e-3.",
        "stop_lr": "Final learning rate, reached at `numb_steps` and never undercut.",
        "stop_lr_ratio": "`stop_lr` as a fraction of `start_lr` (exclusive with `stop_lr`).",
        "decay_steps": "Steps between decays; shortened automatically when too long for "
                       "the run, as deepmd-kit does.",
        "decay_rate": "Factor per decay; by default chosen so that `stop_lr` is reached at "
                      "the end.",
        "warmup_steps": "Steps of linear warmup before the decay.",
        "warmup_ratio": "Warmup as a fraction of `numb_steps`.",
        "warmup_start_factor": "Warmup starts at this fraction of `start_lr`.",
        "smooth": "Decay continuously instead of in steps.",
    },
    "loss": {
        "type": "Loss; only `\"ener\"`.",
        "start_pref_e": "Energy prefactor at the start; interpolated with `lr / start_lr`.",
        "limit_pref_e": "Energy prefactor at the end of the schedule.",
        "start_pref_f": "Force prefactor at the start.",
        "limit_pref_f": "Force prefactor at the end of the schedule.",
        **{f"{s}_pref_{k}": f"{name} prefactor; only 0 (not implemented)."
           for s in ("start", "limit")
           for k, name in (("ae", "Atomic-energy"), ("pf", "Projected-force"),
                           ("gf", "Generalized-force"), ("h", "Hessian"), ("v", "Virial"))},
    },
    "training": {
        "numb_steps": "Training steps (`dpa2 train --steps` overrides).",
        "seed": "Seed of the data sampling and of fresh parameters.",
        "disp_file": "Learning-curve file.",
        "disp_freq": "Steps between learning-curve rows.",
        "save_freq": "Steps between checkpoints.",
        "save_ckpt": "Checkpoint file prefix.",
        "max_ckpt_keep": "How many step checkpoints to keep.",
        "gradient_max_norm": "Clip the gradient to this global norm (0: no clipping).",
        "nan_policy": "What to do when a step produces a non-finite loss or gradient: "
                      "`\"stop\"` (name the step and batch, keep the last good checkpoint) "
                      "or `\"skip\"` (drop the batch, counted in the log); not a deepmd-kit "
                      "key.",
        "training_data": "The training systems (required), see below.",
        "validation_data": "Systems for the validation columns of the learning curve.",
        "stat_file": "deepmd-kit's statistics cache; not used.",
        "disp_training": "Display switch; no numeric effect.",
        "time_training": "Timing switch; no numeric effect.",
        "profiling": "Profiler switch; no numeric effect.",
        "profiling_file": "Profiler output; not used.",
        "enable_profiler": "Profiler switch; not used.",
        "tensorboard": "TensorBoard logging; not used.",
        "tensorboard_log_dir": "TensorBoard folder; not used.",
        "tensorboard_freq": "TensorBoard frequency; not used.",
        "change_bias_after_training": "Refit the energy bias after training.",
        "disp_avg": "Average the displayed metrics over `disp_freq` steps.",
    },
    "data": {
        "systems": "deepmd-format system folders (or a folder holding several); relative "
                   "paths are tried from the working directory, then from the input's folder.",
        "batch_size": "Frames per batch: an int, one int per system, or `\"auto[:N]\"` "
                      "(enough frames for N atoms, default 32).",
        "auto_prob": "How systems are drawn: `\"prob_sys_size\"` (in proportion to their "
                     "batches) or `\"prob_uniform\"`.",
        "numb_btch": "Batches per validation.",
        "sys_probs": "Explicit system probabilities; not supported (use `auto_prob`).",
    },
}
_SECTION_PATHS = {"input": "(top level)", "model": "model", "fitting_net": "model.fitting_net",
                  "learning_rate": "learning_rate", "loss": "loss", "training": "training",
                  "data": "training.training_data, training.validation_data"}


def _supported(call) -> list[str]:
    """The key list of the "unsupported key" error that ``call`` raises."""
    try:
        call()
    except ValueError as err:
        match = re.search(r"supported: (\[.*?\])", str(err))
        if match:
            return sorted(ast.literal_eval(match.group(1)))
        raise RuntimeError(f"unexpected error while probing the training input: {err}") from err
    raise RuntimeError("the training-input reader accepted an unknown key")


def training_keys() -> dict[str, list[tuple[str, str, str]]]:
    """``{section: [(key, default, status)]}`` of the keys ``dpa2 train`` accepts."""
    settings = importlib.import_module("dpa2_core.training.settings")
    fitting = importlib.import_module("dpa2_core.model.fitting")
    bogus = {"not_a_key": 1}  # not "_..." (those are comments)
    probes = {
        "input": lambda: settings.TrainInput.from_dict(bogus),
        "model": lambda: settings._check_model(bogus),
        "fitting_net": lambda: fitting.FittingConfig.from_input(bogus, 1, 1),
        "learning_rate": lambda: settings.LearningRate.from_input(bogus, 10),
        "loss": lambda: settings.LossPrefactors.from_input(bogus),
        "training": lambda: settings.TrainInput.from_dict({"model": {}, "training": bogus}),
        "data": lambda: settings.DataSettings.from_input("data", bogus, Path(".")),
    }
    harmless = getattr(settings, "_HARMLESS", {})
    default_only = getattr(settings, "_DEFAULT_ONLY", {})
    zero_only = {**getattr(fitting, "_FIT_ZERO", {})}
    zero_only.update({f"{s}_pref_{k}": 0 for s in ("start", "limit")
                      for k in getattr(settings, "_ZERO_PREFS", ())})
    defaults: dict[str, dict[str, Any]] = {
        "learning_rate": _field_defaults(settings.LearningRate),
        "loss": _field_defaults(settings.LossPrefactors),
        "training": _field_defaults(settings.TrainInput),
        "data": _field_defaults(settings.DataSettings),
        "fitting_net": _field_defaults(fitting.FittingConfig),
        "model": _field_defaults(settings.ModelSettings),
    }
    out = {}
    for section, probe in probes.items():
        rows = []
        for key in _supported(probe):
            if key in default_only.get(section, {}):
                status = f"only `{json.dumps(default_only[section][key])}`"
            elif key in zero_only:
                status = f"only `{json.dumps(zero_only[key])}`"
            elif section != "data" and key in harmless.get(section, set()):
                # (the reader's "data" entry lists keys it reads itself, not inert ones)
                status = "accepted, no numeric effect"
            else:
                status = "supported"
            rows.append((key, defaults.get(section, {}).get(key, ""), status))
        out[section] = rows
    return out


def _field_defaults(cls: type) -> dict[str, str]:
    return {f.name: _default(f) for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING}


def training_markdown() -> str:
    """The training-input tables (Markdown), one per section."""
    parts = []
    for section, rows in training_keys().items():
        docs = TRAIN_KEY_DOCS.get(section, {})
        missing = [k for k, _, _ in rows if k not in docs]
        if missing:
            raise RuntimeError(f"training input section {section!r}: keys {missing} are "
                               "accepted by dpa2_core.training.settings but have no meaning in "
                               "docs/_ext/reference_tables.py TRAIN_KEY_DOCS")
        parts += [f"### `{_SECTION_PATHS[section]}`", "",
                  "| key | default | accepted | meaning |", "|---|---|---|---|"]
        parts += [f"| `{k}` | {_cell(d)} | {_cell(s)} | {_cell(docs[k])} |" for k, d, s in rows]
        parts.append("")
    return "\n".join(parts)


def cli_commands() -> dict[str, argparse.ArgumentParser]:
    """``{command: parser}`` of the ``dpa2`` sub-commands, in the parser's order."""
    from dpa2_cli.main import build_parser

    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise RuntimeError("dpa2_cli.main.build_parser(): no sub-commands found")


def cli_options(parser: argparse.ArgumentParser) -> list[tuple[str, str, str, str]]:
    """``[(option, argument, default, meaning)]`` of one sub-command (``--help`` left out)."""
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if action.option_strings:
            option = ", ".join(f"`{o}`" for o in action.option_strings)
        else:
            option = f"`{action.metavar or action.dest}`" + (" (optional)"
                                                               if action.nargs == "?" else "")
        if action.nargs == 0:
            argument = "(flag)"
        elif action.choices is not None:
            argument = " \\| ".join(f"`{c}`" for c in action.choices)
        else:
            argument = f"`{action.metavar or action.dest.upper()}`"
        if action.nargs in ("+", "*"):
            argument += " ..."
        # identity, not equality: a default of 0 is shown, None and False (flags) are not
        if (any(action.default is v for v in (None, False, argparse.SUPPRESS))
                or not action.option_strings):
            default = ""
        elif isinstance(action.default, list | tuple):
            default = "`" + " ".join(str(v) for v in action.default) + "`"
        else:
            default = f"`{action.default}`"
        text = (action.help or "") % {"default": action.default, "prog": parser.prog}
        if action.required:
            text = "required; " + text
        rows.append((option, argument, default, " ".join(text.split())))
    return rows


def cli_markdown(command: str) -> str:
    """The options table (Markdown) of ``dpa2 COMMAND``."""
    parser = cli_commands()[command]
    lines = ["| option | argument | default | meaning |", "|---|---|---|---|"]
    lines += [f"| {o} | {a} | {d} | {_cell(m)} |" for o, a, d, m in cli_options(parser)]
    return "\n".join(lines) + "\n"


def write_all(folder: str | Path) -> list[Path]:
    """Write the generated pages into ``folder`` (only when their text changed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    pages = [("config_descriptor.md", descriptor_markdown()),
             ("config_training.md", training_markdown())]
    pages += [(f"cli_{command}.md", cli_markdown(command)) for command in cli_commands()]
    for name, text in pages:
        path = folder / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        written.append(path)
    return written
