"""The subset of deepmd-kit's training input that ``dpa2 train --backend jax`` runs.

Every section is checked against an explicit list of keys; anything else raises a
``ValueError`` naming the key (keys starting with ``_`` are comments). Relative
system paths are relative to the input file's directory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dpa2_core as dc

from .model import ModelConfig

MODEL_KEYS = {"type_map", "descriptor", "fitting_net", "type", "data_stat_nbatch"}
FITTING_KEYS = {"type", "neuron", "resnet_dt", "activation_function", "precision", "seed",
                "rcond"}
LR_KEYS = {"type", "start_lr", "stop_lr", "decay_steps", "decay_rate", "smooth"}
LOSS_KEYS = {"type", "start_pref_e", "limit_pref_e", "start_pref_f", "limit_pref_f",
             "start_pref_v", "limit_pref_v"}
TRAINING_KEYS = {"training_data", "validation_data", "numb_steps", "seed", "disp_file",
                 "disp_freq", "save_freq", "save_ckpt", "gradient_max_norm", "stat_file",
                 "disp_training", "time_training"}
DATA_KEYS = {"systems", "batch_size", "numb_btch"}


def check_keys(section: str, d: Any, allowed: set[str]) -> dict:
    """``d`` as a dict without comment keys; unknown keys raise, all of them named."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{section}: must be a dict, got {type(d).__name__}")
    bad = sorted(k for k in d if k not in allowed and not str(k).startswith("_"))
    if bad:
        raise ValueError(f"{section}: unsupported key(s) {bad} for the jax backend; "
                         f"supported: {sorted(allowed)}")
    return {k: v for k, v in d.items() if not str(k).startswith("_")}


def _only(section: str, key: str, value: Any, allowed: tuple) -> None:
    if value not in allowed:
        raise ValueError(f"{section}.{key}={value!r}: the jax backend supports {allowed}")


@dataclasses.dataclass(frozen=True)
class ExpDecay:
    """deepmd-kit's ``exp`` schedule: ``lr = max(start_lr * rate**(step // decay_steps),
    stop_lr)`` (``smooth``: ``step / decay_steps``), the rate chosen so that lr reaches
    ``stop_lr`` at ``numb_steps``."""

    start_lr: float
    stop_lr: float
    decay_steps: int
    decay_rate: float
    smooth: bool = False

    @classmethod
    def from_dict(cls, d: Mapping, numb_steps: int) -> ExpDecay:
        d = check_keys("learning_rate", d, LR_KEYS)
        _only("learning_rate", "type", d.get("type", "exp"), ("exp",))
        start, stop = float(d.get("start_lr", 1e-3)), float(d.get("stop_lr", 1e-8))
        if not start > 0 or not stop > 0:
            raise ValueError("learning_rate: start_lr and stop_lr must be positive")
        steps = int(d.get("decay_steps", 5000))
        if steps <= 0:
            raise ValueError(f"learning_rate.decay_steps={steps}: must be positive")
        rate = d.get("decay_rate")
        if rate is None:
            if steps >= numb_steps:  # deepmd-kit shrinks a period longer than the run
                steps = 100 if numb_steps // 10 > 100 else numb_steps // 100 + 1
            rate = math.exp(math.log(stop / start) / (max(numb_steps, 1) / steps))
        return cls(start, stop, steps, float(rate), bool(d.get("smooth", False)))

    def value(self, step: int) -> float:
        """Learning rate of (0-based) ``step``."""
        power = step / self.decay_steps if self.smooth else step // self.decay_steps
        return max(self.start_lr * self.decay_rate**power, self.stop_lr)


@dataclasses.dataclass(frozen=True)
class EnerLoss:
    """``pref = limit + (start - limit) * lr / start_lr`` for energies and forces."""

    start_pref_e: float = 0.02
    limit_pref_e: float = 1.0
    start_pref_f: float = 1000.0
    limit_pref_f: float = 1.0

    @classmethod
    def from_dict(cls, d: Mapping) -> EnerLoss:
        d = check_keys("loss", d, LOSS_KEYS)
        _only("loss", "type", d.pop("type", "ener"), ("ener",))
        for key in ("start_pref_v", "limit_pref_v"):
            if float(d.pop(key, 0.0)) != 0.0:
                raise ValueError(f"loss.{key}: virial training is not supported by the jax "
                                 "backend (set it to 0)")
        return cls(**{k: float(v) for k, v in d.items()})

    def prefactors(self, lr: float, start_lr: float) -> tuple[float, float]:
        c = lr / start_lr
        return (self.limit_pref_e + (self.start_pref_e - self.limit_pref_e) * c,
                self.limit_pref_f + (self.start_pref_f - self.limit_pref_f) * c)


@dataclasses.dataclass(frozen=True)
class DataInput:
    systems: tuple[Path, ...]
    batch_size: int | str = "auto"
    numb_btch: int = 1


@dataclasses.dataclass(frozen=True)
class TrainInput:
    """Everything a training run needs, validated."""

    model: ModelConfig
    type_map: tuple[str, ...]
    descriptor_seed: int
    fitting_seed: int
    rcond: float | None
    lr: ExpDecay
    loss: EnerLoss
    training: DataInput
    validation: DataInput | None
    numb_steps: int
    seed: int | None
    disp_file: str
    disp_freq: int
    save_freq: int
    save_ckpt: str
    gradient_max_norm: float | None
    data_stat_nbatch: int = 10


def _systems(section: str, value: Any, root: Path) -> tuple[Path, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items:
        raise ValueError(f"{section}.systems: must be a path or a non-empty list of paths")
    out = []
    for s in items:
        path = Path(s) if Path(s).is_absolute() else root / s
        if (path / "type.raw").is_file():
            out.append(path)
            continue
        found = sorted(p.parent for p in path.rglob("type.raw")) if path.is_dir() else []
        if not found:
            raise FileNotFoundError(f"{section}.systems: {str(path)!r} holds no deepmd "
                                    "system (no type.raw)")
        out.extend(found)
    return tuple(out)


def _data(section: str, d: Any, root: Path) -> DataInput:
    d = check_keys(section, d, DATA_KEYS)
    if "systems" not in d:
        raise ValueError(f"{section}.systems: required key is missing")
    bs = d.get("batch_size", "auto")
    if not (isinstance(bs, int) and bs > 0) and not (isinstance(bs, str)
                                                      and bs.startswith("auto")):
        raise ValueError(f"{section}.batch_size={bs!r}: must be a positive int or 'auto[:N]'")
    return DataInput(_systems(section, d["systems"], root), bs, int(d.get("numb_btch", 1)))


def _model(d: Any) -> tuple[ModelConfig, tuple[str, ...], int, int, float | None, int]:
    d = check_keys("model", d, MODEL_KEYS)
    _only("model", "type", d.get("type", "standard"), ("standard",))
    if "type_map" not in d or "descriptor" not in d:
        raise ValueError("model: type_map and descriptor are required")
    desc = {k: v for k, v in d["descriptor"].items() if not str(k).startswith("_")}
    desc.setdefault("type_map", d["type_map"])
    config = dc.DPA2Config.from_dict(desc)
    fit = check_keys("model.fitting_net", d.get("fitting_net", {}), FITTING_KEYS)
    _only("model.fitting_net", "type", fit.pop("type", "ener"), ("ener",))
    fit_seed, rcond = fit.pop("seed", None), fit.pop("rcond", None)
    seed = config.seed if isinstance(config.seed, int) else 0
    model = ModelConfig.build(config, fit)
    nbatch = int(d.get("data_stat_nbatch", 10))
    if nbatch <= 0:
        raise ValueError(f"model.data_stat_nbatch={nbatch}: must be positive")
    return (model, tuple(d["type_map"]), seed,
            seed if fit_seed is None else int(fit_seed), rcond, nbatch)


def parse_input(d: Mapping, root: Path, steps: int | None = None) -> TrainInput:
    """Validate a deepmd-kit training input dict; ``steps`` overrides ``numb_steps``."""
    d = check_keys("input", d, {"model", "learning_rate", "loss", "training"})
    for key in ("model", "training"):
        if key not in d:
            raise ValueError(f"{key}: required section is missing")
    model, type_map, dseed, fseed, rcond, stat_nbatch = _model(d["model"])
    t = check_keys("training", d["training"], TRAINING_KEYS)
    numb_steps = int(t.get("numb_steps", 0) if steps is None else steps)
    if numb_steps < 0:
        raise ValueError(f"training.numb_steps={numb_steps}: must be >= 0")
    if "training_data" not in t:
        raise ValueError("training.training_data: required key is missing")
    valid = t.get("validation_data")
    gmn = t.get("gradient_max_norm")
    return TrainInput(
        model, type_map, dseed, fseed, rcond,
        ExpDecay.from_dict(d.get("learning_rate", {}), numb_steps),
        EnerLoss.from_dict(d.get("loss", {})),
        _data("training.training_data", t["training_data"], root),
        None if valid is None else _data("training.validation_data", valid, root),
        numb_steps, t.get("seed"), str(t.get("disp_file", "lcurve.out")),
        int(t.get("disp_freq", 1000)), int(t.get("save_freq", 1000)),
        str(t.get("save_ckpt", "model.ckpt")), None if gmn is None else float(gmn),
        stat_nbatch)
