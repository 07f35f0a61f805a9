"""One way the commands load and run a whole energy model, on either backend.

:func:`open_model` reads any model file through :func:`dpa2_core.io.load_model` and
returns a :class:`Predictor` whose :meth:`Predictor.predict` gives energy, per-atom
energies, forces and virial of one frame as numpy. ``dpa2 eval`` and ``dpa2 test`` both
use it. An exported artifact (``.pte``/``.pt2``/``.jaxexport`` of ``dpa2 freeze``), which
:func:`dpa2_core.io.load_model` does not read, runs through the calculator of its framework
(:class:`ArtifactPredictor`): its neighbor list, input checks and ghost-force folding are
the calculators' own, not a second copy here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np

from dpa2_core.io.artifacts import ARTIFACT_KINDS
from dpa2_core.io.deepmd_model import DeepmdModel
from dpa2_core.io.loader import load_model, model_kind
from dpa2_core.io.structures import Frame
from dpa2_core.neighbors.extension import extension

__all__ = ["ARTIFACT_BACKENDS", "ArtifactPredictor", "BACKENDS", "DEVICES", "Predictor",
           "backend_module", "open_model"]

BACKENDS = ("torch", "jax")
DEVICES = ("cpu", "cuda")
_BUCKET = 64  # extended-atom count rounded up: frames of one file share a jax compile
# artifact kind (dpa2_core.io.model_kind) -> the backend whose calculator runs it
ARTIFACT_BACKENDS = {kind: "jax" if kind == "jax-export" else "torch"
                     for kind in ARTIFACT_KINDS.values()}


def backend_module(name: str, module: str | None = None) -> Any:
    """Import ``module`` (default: the shim ``dpa2_<name>``) or say how to install it."""
    try:
        return importlib.import_module(module or f"dpa2_{name}")
    except ImportError as err:
        raise ValueError(f"--backend {name}: not available ({err}); "
                         f"pip install 'dpa2[{name}]'") from err


_JITTED: dict[str, Any] = {}


def _jax_step(jax: Any, shim: Any) -> Any:
    """``jit(energy_force_virial)``, one per process: same shapes reuse one compile."""
    if "step" not in _JITTED:
        _JITTED["step"] = jax.jit(shim.energy_force_virial, static_argnums=1)
    return _JITTED["step"]


class Predictor:
    """A loaded model on one backend and device; ``predict(frame)`` -> numpy dict:
    energy () eV, atom_energy (nloc,) eV, force (nloc, 3) eV/Å, virial (3, 3) eV."""

    def __init__(self, record: DeepmdModel, source: str, backend: str, device: str) -> None:
        _checked(backend, device)
        self.record, self.source, self.backend, self.device = record, source, backend, device
        self.config = record.config
        self.type_map = list(record.config.type_map or ())
        self._run = self._torch(record, device) if backend == "torch" else \
            self._jax(record, device)

    # ------------------------------------------------------------ backends
    def _torch(self, record: DeepmdModel, device: str):
        torch = backend_module("torch", "torch")
        shim = backend_module("torch")
        if device == "cuda" and not torch.cuda.is_available():
            raise ValueError("--device cuda: torch sees no CUDA device (use --device cpu)")
        model = shim.load_model(record, device=device).eval()
        dtype = model.out_bias.dtype

        def run(frame: Frame, ext) -> dict:
            nb = shim.Neighbors(*(torch.from_numpy(np.asarray(a)) for a in ext)).to(
                device, dtype)
            coord = torch.as_tensor(frame.coord[None], dtype=dtype, device=device)
            atype = torch.as_tensor(frame.atype[None], device=device)
            out = model(coord, atype, neighbors=nb, create_graph=False, virial=True)
            return {k: v.detach().cpu().numpy()[0] for k, v in out.items()}

        return run

    def _jax(self, record: DeepmdModel, device: str):
        jax = backend_module("jax", "jax")
        if record.config.dtype_name == "float64":
            jax.config.update("jax_enable_x64", True)  # the model's own precision
        shim = backend_module("jax")
        kind = "gpu" if device == "cuda" else "cpu"
        try:
            target = jax.devices(kind)[0]
        except RuntimeError as err:
            raise ValueError(f"--device {device}: jax sees no {kind} device "
                             "(use --device cpu)") from err
        config, params = shim.from_record(record)
        params = jax.device_put(params, target)
        step = _jax_step(jax, shim)
        dtype = np.dtype(record.config.dtype_name)

        def run(frame: Frame, ext) -> dict:
            put = jax.device_put
            ext_j = shim.Extension(*(put(np.asarray(a), target) for a in ext[:3]),
                                   put(np.asarray(ext.shift, dtype), target))
            coord = put(frame.coord[None].astype(dtype), target)
            atom_e, force, virial = step(params, config, coord, ext_j)
            atom_e = np.asarray(atom_e)[0]
            return {"energy": atom_e.sum(), "atom_energy": atom_e,
                    "force": np.asarray(force)[0], "virial": np.asarray(virial)[0]}

        return run

    # ------------------------------------------------------------ use
    def predict(self, frame: Frame) -> dict[str, np.ndarray]:
        ext = extension(frame.coord[None], frame.atype[None], self.config,
                        None if frame.box is None else frame.box[None], pbc=frame.pbc,
                        bucket=_BUCKET if self.backend == "jax" else 1)
        out = self._run(frame, ext)
        return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def _checked(backend: str, device: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"--backend {backend!r}: choose one of {BACKENDS}")
    if device not in DEVICES:
        raise ValueError(f"--device {device!r}: choose one of {DEVICES}")


class ArtifactPredictor:
    """An exported artifact run by its framework's calculator (``dpa2_torch.Calculator`` /
    ``dpa2_jax.Calculator``); ``predict(frame)`` -> the numpy dict of :class:`Predictor`.

    The virial is the artifact's own (3, 3) output, read where the calculator hands the
    lower call's answer back (:meth:`BaseCalculator._evaluate`), since ASE's stress keeps
    only its symmetric part and an open frame has none.
    """

    def __init__(self, path: str | Path, kind: str, backend: str, device: str) -> None:
        _checked(backend, device)
        self.source, self.backend, self.device = str(path), backend, device
        if backend == "jax":
            jax = backend_module("jax", "jax")
            if kind == "jax-export":  # x64 before loading: a float64 program needs it
                jax.config.update("jax_enable_x64", True)
        shim = backend_module(backend)
        lower: dict[str, Any] = {}

        class Recording(shim.Calculator):
            def _evaluate(self, *args: Any) -> dict[str, np.ndarray]:
                out = super()._evaluate(*args)
                lower.update(out)
                return out

        jax_device = "gpu" if device == "cuda" else "cpu"
        try:
            self.calc = Recording(str(path), device=jax_device if backend == "jax" else device)
        except RuntimeError as err:  # jax.devices("gpu") without a GPU
            raise ValueError(f"--device {device}: {backend} cannot run {path} there ({err}); "
                             "use --device cpu") from err
        self._lower = lower
        self.type_map = list(self.calc.type_map)

    def predict(self, frame: Frame) -> dict[str, np.ndarray]:
        import ase

        pbc = (False,) * 3 if frame.box is None else (frame.pbc or (True,) * 3)
        atoms = ase.Atoms(positions=frame.coord, pbc=pbc,
                          cell=None if frame.box is None else frame.box,
                          symbols=[self.type_map[t] for t in frame.atype])
        self.calc.calculate(atoms, ("energy", "forces"))
        r = self.calc.results
        virial = np.asarray(self._lower["virial"], dtype=np.float64).reshape(3, 3)
        return {"energy": np.float64(r["energy"]), "atom_energy": r["energies"],
                "force": r["forces"], "virial": virial}


def open_model(path: str | Path, head: str | None = None, backend: str | None = None,
               device: str = "cpu") -> Predictor | ArtifactPredictor:
    """A predictor for any model file: :func:`dpa2_core.io.load_model` reads it, or, for an
    exported artifact, the calculator of its framework runs it.

    ``backend`` None: torch, or an artifact's own framework; a backend that cannot run
    the artifact is refused in one line.
    """
    kind = model_kind(path)
    if kind in ARTIFACT_BACKENDS:
        own = ARTIFACT_BACKENDS[kind]
        if backend is not None and backend != own:
            raise ValueError(f"--backend {backend}: {path} is an exported {own} program; "
                             f"run it with --backend {own}")
        if head is not None:
            raise ValueError(f"--head {head}: {path} is an exported single model (no heads)")
        return ArtifactPredictor(path, kind, own, device)
    return Predictor(load_model(path, head), str(path), backend or "torch", device)
