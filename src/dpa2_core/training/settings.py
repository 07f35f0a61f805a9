"""deepmd-kit's training input (JSON) read into frozen settings, with clear key errors.

Shared by ``dpa2 train`` on every backend. Supported: ``model`` (type_map, descriptor
``dpa2``, energy ``fitting_net``, data_stat_nbatch), ``learning_rate`` (``exp`` with
deepmd's decay rule and optional warmup), ``loss`` (``ener``: energy and force
prefactors), ``training`` (steps, display, checkpoints, seed, gradient clipping,
training/validation data, and our ``nan_policy``: ``"stop"`` or ``"skip"`` a batch with a
non-finite loss or gradient, :mod:`dpa2_core.training.guards`). A value of the wrong type
names its key path (``training.training_data.systems[2]``), a JSON syntax error its line
and column. Keys that change results but are not implemented raise
``ValueError`` naming them (so do bookkeeping keys set away from their default when
that default is the only behaviour here); keys that change nothing numeric
(``stat_file``, ``disp_file``, ``_comment``, ...) are accepted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from ..model.config import DPA2Config
from ..model.fitting import FittingConfig
from .guards import NAN_POLICIES
from .sampling import AUTO_PROBS, batch_sizes

__all__ = ["DataSettings", "LearningRate", "LossPrefactors", "ModelSettings", "TrainInput"]

_HARMLESS = {
    "model": {"info", "model_branch_alias", "bridging_method", "bridging_r_inner",
              "bridging_r_outer"},
    "training": {"stat_file", "disp_training", "time_training", "profiling", "profiling_file",
                 "enable_profiler", "tensorboard", "tensorboard_log_dir", "tensorboard_freq"},
    "data": {"auto_prob", "numb_btch", "sys_probs"},
}
# accepted only at deepmd-kit's default, the one behaviour implemented here
_DEFAULT_ONLY = {
    "model": {"data_stat_protect": 1e-2, "data_bias_nsample": 10, "srtab_add_bias": True},
    "training": {"change_bias_after_training": False, "disp_avg": False},
}
_ZERO_PREFS = ("ae", "pf", "gf", "h", "v")
_KINDS = {int: "an int", float: "a number", str: "a string"}


def _typed(where: str, value: Any, kind: type) -> Any:
    """``value`` as ``kind``, else a ``ValueError`` naming the key path ``where``."""
    ok = isinstance(value, str) if kind is str else (
        isinstance(value, int | float) and not isinstance(value, bool)
        and (kind is float or float(value).is_integer()))
    if not ok:
        raise ValueError(f"{where}={value!r}: must be {_KINDS[kind]}")
    return kind(value)


def _check_keys(where: str, d: dict, supported: set, harmless: set = frozenset()) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: must be a dict, got {type(d).__name__}")
    defaults = _DEFAULT_ONLY.get(where, {})
    allowed = supported | harmless | set(defaults)
    bad = sorted(k for k in d if k not in allowed and not str(k).startswith("_"))
    if bad:
        raise ValueError(f"{where}: unsupported key(s) {bad}; supported: {sorted(allowed)}")
    for key, default in defaults.items():
        if key in d and d[key] != default:
            raise ValueError(f"{where}.{key}={d[key]!r}: only deepmd-kit's default "
                             f"{default!r} is supported")


@dataclasses.dataclass(frozen=True)
class LearningRate:
    """deepmd-kit's ``exp`` schedule: ``lr(t) = start_lr * decay_rate ** (t // decay_steps)``
    (``t`` counted after warmup, clipped below at ``stop_lr``), linear warmup first."""

    start_lr: float
    stop_lr: float
    num_steps: int
    decay_steps: int = 5000
    decay_rate: float | None = None
    warmup_steps: int = 0
    warmup_start_factor: float = 0.0
    smooth: bool = False

    def __post_init__(self) -> None:
        if not (self.start_lr > 0 and math.isfinite(self.start_lr)):
            raise ValueError(f"learning_rate.start_lr={self.start_lr!r}: must be positive")
        if self.decay_steps <= 0:
            raise ValueError(f"learning_rate.decay_steps={self.decay_steps!r}: must be positive")
        if self.num_steps > 0 and self.warmup_steps >= self.num_steps:
            raise ValueError(f"learning_rate.warmup_steps={self.warmup_steps}: must be smaller "
                             f"than numb_steps={self.num_steps}")
        total = self.num_steps - self.warmup_steps
        if self.decay_rate is None and self.decay_steps >= total:  # deepmd's auto-adjustment
            object.__setattr__(self, "decay_steps", 100 if total // 10 > 100 else total // 100 + 1)
        if self.decay_rate is None:
            rate = 1.0 if total == 0 else math.exp(
                math.log(max(self.stop_lr, 1e-10) / self.start_lr) / (total / self.decay_steps))
            object.__setattr__(self, "decay_rate", rate)

    @classmethod
    def from_input(cls, d: dict, num_steps: int) -> LearningRate:
        supported = {"type", "start_lr", "stop_lr", "stop_lr_ratio", "decay_steps", "decay_rate",
                     "warmup_steps", "warmup_ratio", "warmup_start_factor", "smooth"}
        _check_keys("learning_rate", d, supported)
        if d.get("type", "exp") != "exp":
            raise ValueError(f"learning_rate.type={d['type']!r}: only 'exp' is supported")
        for key in ("start_lr", "stop_lr", "stop_lr_ratio", "decay_rate", "warmup_ratio",
                    "warmup_start_factor"):
            if d.get(key) is not None:
                _typed(f"learning_rate.{key}", d[key], float)
        for key in ("decay_steps", "warmup_steps"):
            if key in d:
                _typed(f"learning_rate.{key}", d[key], int)
        start = float(d.get("start_lr", 1e-3))
        if "stop_lr" in d and "stop_lr_ratio" in d:
            raise ValueError("learning_rate: stop_lr and stop_lr_ratio are mutually exclusive")
        stop = float(d["stop_lr"]) if "stop_lr" in d else start * float(
            d.get("stop_lr_ratio", 1e-8 / start))
        warmup = int(d["warmup_ratio"] * num_steps) if "warmup_ratio" in d else int(
            d.get("warmup_steps", 0))
        return cls(start, stop, num_steps, int(d.get("decay_steps", 5000)), d.get("decay_rate"),
                   warmup, float(d.get("warmup_start_factor", 0.0)), bool(d.get("smooth", False)))

    def value(self, step: int) -> float:
        """Learning rate at (0-based) ``step``."""
        if step < self.warmup_steps:
            start = self.warmup_start_factor * self.start_lr
            return start + (self.start_lr - start) * step / self.warmup_steps
        t = step - self.warmup_steps
        exponent = t / self.decay_steps if self.smooth else t // self.decay_steps
        return max(self.start_lr * self.decay_rate ** exponent, self.stop_lr)


@dataclasses.dataclass(frozen=True)
class LossPrefactors:
    """Energy and force prefactors, interpolated with ``lr / start_lr`` as deepmd does."""

    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0

    @classmethod
    def from_input(cls, d: dict) -> LossPrefactors:
        prefs = {f"{s}_pref_{k}" for s in ("start", "limit") for k in _ZERO_PREFS}
        _check_keys("loss", d, {"type", *(f.name for f in dataclasses.fields(cls)), *prefs})
        if d.get("type", "ener") != "ener":
            raise ValueError(f"loss.type={d['type']!r}: only 'ener' is supported")
        nonzero = sorted(k for k in prefs if d.get(k, 0) != 0)
        if nonzero:
            raise ValueError(f"loss: {nonzero} must be 0 (only energy and force losses are "
                             "implemented)")
        return cls(**{f.name: _typed(f"loss.{f.name}", d[f.name], float)
                      for f in dataclasses.fields(cls) if f.name in d})

    def at(self, lr: float, start_lr: float) -> tuple[float, float]:
        coef = lr / start_lr
        return (self.limit_pref_e + (self.start_pref_e - self.limit_pref_e) * coef,
                self.limit_pref_f + (self.start_pref_f - self.limit_pref_f) * coef)


@dataclasses.dataclass(frozen=True)
class DataSettings:
    """A list of deepmd-format systems and how batches are drawn from them."""

    systems: tuple[Path, ...]
    batch_size: Any = "auto"
    auto_prob: str = "prob_sys_size"
    numb_btch: int = 1

    @classmethod
    def from_input(cls, where: str, d: dict, base: Path) -> DataSettings:
        _check_keys(where, d, {"systems", "batch_size"}, _HARMLESS["data"])
        if d.get("sys_probs") is not None:
            raise ValueError(f"{where}.sys_probs: not supported (use auto_prob)")
        prob = d.get("auto_prob", d.get("auto_prob_style", "prob_sys_size"))
        if prob not in AUTO_PROBS:
            raise ValueError(f"{where}.auto_prob={prob!r}: use one of {AUTO_PROBS}")
        systems = d.get("systems")
        if isinstance(systems, str | os.PathLike):
            systems = [systems]
        if not systems or not isinstance(systems, list | tuple):
            raise ValueError(f"{where}.systems: required (a list of system directories)")
        paths = tuple(x for i, s in enumerate(systems)
                      for x in _systems(f"{where}.systems[{i}]", s, base))
        batch = d.get("batch_size", "auto")
        try:  # the form of batch_size; its length is checked against the systems
            batch_sizes(batch, [1] * (len(paths) if isinstance(batch, list | tuple) else 1))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{where}.batch_size={batch!r}: use an int, one int per system "
                             f"({len(paths)}) or 'auto[:N]'") from err
        numb_btch = _typed(f"{where}.numb_btch", d.get("numb_btch", 1), int)
        if numb_btch <= 0:
            raise ValueError(f"{where}.numb_btch={numb_btch}: must be positive")
        return cls(paths, batch, prob, numb_btch)


def _systems(where: str, entry: Any, base: Path) -> list[Path]:
    """The system directories of one ``systems`` entry (key path ``where``)."""
    if not isinstance(entry, str | os.PathLike):
        raise ValueError(f"{where}={entry!r}: must be a path (string)")
    path = _resolve(entry, base)
    if not path.is_dir():
        raise ValueError(f"{where}={str(entry)!r}: no such directory (relative paths: from "
                         f"the working directory, else from {str(base)!r})")
    found = _expand(path)
    if not any((p / "type.raw").is_file() for p in found):
        raise ValueError(f"{where}={str(entry)!r}: not a deepmd-format system (no type.raw "
                         "in it or below)")
    return found


def _resolve(path: str, base: Path) -> Path:
    """Relative paths: the working directory first (deepmd's rule), else the input's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    return (base / p).resolve()


def _expand(path: Path) -> list[Path]:
    """A system directory, or every system (folder with ``type.raw``) below ``path``."""
    if (path / "type.raw").is_file() or not path.is_dir():
        return [path]
    found = sorted(p.parent for p in path.rglob("type.raw"))
    return found or [path]


def _check_model(model: dict) -> None:
    supported = {"type_map", "descriptor", "fitting_net", "type", "data_stat_nbatch",
                 "pair_exclude_types", "atom_exclude_types", "preset_out_bias"}
    _check_keys("model", model, supported, _HARMLESS["model"])
    if model.get("type", "standard") != "standard":
        raise ValueError(f"model.type={model['type']!r}: only 'standard' is supported")
    for key in ("pair_exclude_types", "atom_exclude_types", "preset_out_bias"):
        if model.get(key):
            raise ValueError(f"model.{key}={model[key]!r}: not supported")
    for key in ("type_map", "descriptor", "fitting_net"):
        if key not in model:
            raise ValueError(f"model.{key}: required key is missing")


def _seed(value: Any, default: int) -> int:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    return default if value is None else int(value)


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """The energy model a ``model`` section describes: descriptor and fitting configs,
    the seeds their fresh parameters are drawn with (their own ``seed`` keys, else the
    training seed and the training seed + 1), the least-squares ``rcond`` of the energy
    bias and the number of batches per system the statistics use."""

    type_map: tuple[str, ...]
    descriptor: DPA2Config
    fitting: FittingConfig
    descriptor_seed: int
    fitting_seed: int
    rcond: float | None = None
    data_stat_nbatch: int = 10

    @classmethod
    def from_input(cls, model: dict, seed: int | None = None) -> ModelSettings:
        _check_model(model)
        seed = 0 if seed is None else int(seed)
        desc = {k: v for k, v in model["descriptor"].items() if not str(k).startswith("_")}
        desc.setdefault("type_map", list(model["type_map"]))
        config = DPA2Config.from_dict(desc)
        if list(config.type_map) != list(model["type_map"]):
            raise ValueError(f"model.descriptor.type_map={list(config.type_map)}: differs "
                             f"from model.type_map={list(model['type_map'])}")
        fit = model.get("fitting_net", {})
        fitting = FittingConfig.from_input(fit, config.ntypes, config.dim_out,
                                           precision=config.dtype_name)
        if fitting.precision != config.dtype_name:
            raise ValueError(f"fitting_net.precision={fit.get('precision')!r}: must match the "
                             f"descriptor precision {config.precision!r}")
        nbatch = int(model.get("data_stat_nbatch", 10))
        if nbatch <= 0:
            raise ValueError(f"model.data_stat_nbatch={nbatch}: must be positive")
        rcond = fit.get("rcond")
        return cls(tuple(model["type_map"]), config, fitting, _seed(desc.get("seed"), seed),
                   _seed(fit.get("seed"), seed + 1),
                   None if rcond is None else float(rcond), nbatch)


@dataclasses.dataclass(frozen=True)
class TrainInput:
    """Everything ``dpa2 train`` needs, read from a deepmd-kit input dict."""

    raw: dict
    settings: ModelSettings
    lr: LearningRate
    loss: LossPrefactors
    training_data: DataSettings
    validation_data: DataSettings | None
    numb_steps: int
    seed: int | None = None
    disp_file: str = "lcurve.out"
    disp_freq: int = 1000
    save_freq: int = 1000
    save_ckpt: str = "model.ckpt"
    gradient_max_norm: float = 0.0
    max_ckpt_keep: int = 5
    nan_policy: str = "stop"

    @property
    def model(self) -> dict:
        return self.raw["model"]

    @classmethod
    def from_dict(cls, d: dict, base: Path = Path("."), steps: int | None = None) -> TrainInput:
        _check_keys("input", d, {"model", "learning_rate", "loss", "training"})
        for key in ("model", "training"):
            if key not in d:
                raise ValueError(f"{key}: required section is missing")
        t = d.get("training", {})
        scalars = {"numb_steps", "seed", "disp_file", "disp_freq", "save_freq", "save_ckpt",
                   "gradient_max_norm", "max_ckpt_keep", "nan_policy"}
        _check_keys("training", t, scalars | {"training_data", "validation_data"},
                    _HARMLESS["training"])
        if "training_data" not in t:
            raise ValueError("training.training_data: required key is missing")
        numb_steps = _typed("training.numb_steps", t.get("numb_steps", 0), int) \
            if steps is None else int(steps)
        if numb_steps < 0:
            raise ValueError(f"training.numb_steps={numb_steps}: must be >= 0")
        val = t.get("validation_data")
        kwargs = {k: t[k] for k in scalars - {"numb_steps"} if k in t}
        for key in ("disp_freq", "save_freq"):
            if key in kwargs and not (isinstance(kwargs[key], int) and kwargs[key] > 0):
                raise ValueError(f"training.{key}={kwargs[key]!r}: must be a positive int")
        kinds = {"max_ckpt_keep": int, "gradient_max_norm": float, "save_ckpt": str,
                 "disp_file": str, "nan_policy": str}
        for key, kind in kinds.items():
            if key in kwargs:
                kwargs[key] = _typed(f"training.{key}", kwargs[key], kind)
        if t.get("seed") is not None and not isinstance(t["seed"], list):
            _typed("training.seed", t["seed"], int)
        if kwargs.get("nan_policy", "stop") not in NAN_POLICIES:
            raise ValueError(f"training.nan_policy={kwargs['nan_policy']!r}: use one of "
                             f"{NAN_POLICIES}")
        return cls(
            raw=d, settings=ModelSettings.from_input(d["model"], t.get("seed")),
            lr=LearningRate.from_input(d.get("learning_rate", {}), numb_steps),
            loss=LossPrefactors.from_input(d.get("loss", {})),
            training_data=DataSettings.from_input("training.training_data", t["training_data"],
                                                  base),
            validation_data=None if val is None else DataSettings.from_input(
                "training.validation_data", val, base),
            numb_steps=numb_steps, **kwargs)

    @classmethod
    def from_file(cls, path: str | os.PathLike, steps: int | None = None) -> TrainInput:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"input={str(path)!r}: no such file")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"input={str(path)!r}: invalid JSON at line {err.lineno}, column "
                             f"{err.colno}: {err.msg}") from None
        except UnicodeDecodeError as err:
            raise ValueError(f"input={str(path)!r}: not a text (UTF-8) file "
                             f"({err.reason} at byte {err.start})") from None
        return cls.from_dict(d, path.resolve().parent, steps)
