"""The ASE side of the dpa2 calculators, shared by ``dpa2_torch`` and ``dpa2_jax``.

:class:`BaseCalculator` turns an ``ase.Atoms`` into the model's lower interface and the
model's answer back into ASE results; a shim only supplies :meth:`BaseCalculator._evaluate`
(energy, per-atom energies, forces on the extended atoms and the virial of one extended
frame). Everything else is one rule, here: element symbols through the model's type_map,
input checks (unknown elements, periodic axes without a cell, NaN positions, overlapping
atoms), the neighbor list kept between calls within a skin
(:mod:`dpa2_core.neighbors.skin`), forces folded from ghosts onto their atoms, and the
stress ``-(W + W^T) / (2 V)`` in Voigt order (xx, yy, zz, yz, xz, xy), eV/Å³, ASE's sign
(positive = tensile), as deepmd-kit's ``deepmd.calculator.DP`` does.

Needs ``ase`` (the ``io`` extra); importing :mod:`dpa2_core` does not import this module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from ase.calculators.calculator import Calculator, all_changes

from .io.artifacts import LoadedArtifact
from .neighbors.skin import SkinList, build_skin_list, extended_coord, moved_too_far, select

__all__ = ["BaseCalculator", "DEFAULT_SKIN", "MIN_DISTANCE", "PRECISIONS", "artifact_precision",
           "stress_from_virial"]

DEFAULT_SKIN = 1.0  # Å: LAMMPS's metal-units default is 2 Å; 1 Å outlives ~50 steps of water
MIN_DISTANCE = 0.1  # Å: no two real atoms are this close (H2 is 0.74 Å); closer is a bug
PRECISIONS = ("float64", "float32")


def stress_from_virial(xp: Any, virial: Any, volume: Any) -> Any:
    """Stress ``-(W + W^T) / (2 V)``, eV/Å³ (ASE's and torch-sim's sign: tensile > 0).

    virial: (..., 3, 3) eV, deepmd's ``W = sum_a f_a (x) x_a`` over extended atoms;
    volume: (...) Å³ (> 0). The symmetric part, as deepmd-kit's ``DP`` calculator reports.
    """
    transposed = virial.mT if hasattr(virial, "mT") else xp.swapaxes(virial, -1, -2)
    return -0.5 * (virial + transposed) / volume[..., None, None]


def artifact_precision(program: LoadedArtifact, dtype: str | None, head: str | None) -> str:
    """The precision a calculator on an exported artifact runs in: the artifact's own.

    ``dtype`` may only repeat it (an artifact is traced in one precision), and ``head``
    must be None (an artifact holds one model).
    """
    precision, name = program.precision, program.path.name
    if head is not None:
        raise ValueError(f"head={head!r}: {name} is an exported single model (no heads)")
    if dtype is not None and dtype != precision:
        raise ValueError(f"dtype={dtype!r}: {name} is a {precision} artifact (export it "
                         f"again with --dtype {dtype})")
    return precision


class BaseCalculator(Calculator):
    """ASE calculator around a DPA-2 energy model's lower interface (subclass: ``_evaluate``).

    Parameters
    ----------
    type_map : sequence of str
        The model's element symbols; atom type ``t`` is ``type_map[t]``.
    rcut, nsel : float, int
        The model's cutoff (Å) and neighbor capacity (repinit's).
    dtype : {"float64", "float32"}
        Precision the model runs in (results are float64 numpy either way).
    skin : float
        Å. The neighbor list is rebuilt when an atom moved more than ``skin / 2`` since the
        last build, or when the cell, pbc, atom count or elements changed; in between its
        candidates (within ``rcut + skin``) are re-cut at ``rcut`` (same neighbors as a
        fresh build). ``skin=0`` rebuilds at every call.
    min_distance : float
        Å. Two atoms closer than this raise a ``ValueError`` (overlapping atoms).
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]
    #: ``nall`` is padded up to a multiple of this (a jit backend: fewer distinct shapes).
    bucket = 1

    def __init__(self, type_map: Sequence[str], rcut: float, nsel: int, *,
                 dtype: str = "float64", skin: float = DEFAULT_SKIN,
                 min_distance: float = MIN_DISTANCE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if dtype not in PRECISIONS:
            raise ValueError(f"dtype={dtype!r}: must be one of {PRECISIONS}")
        if not skin >= 0:
            raise ValueError(f"skin={skin!r}: must be >= 0 (Å)")
        if type_map is None:
            raise ValueError("model: has no type_map; the calculator maps element symbols "
                             "through it (set type_map in the model)")
        self.type_map = tuple(str(t) for t in type_map)
        self.rcut, self.nsel = float(rcut), int(nsel)
        self.dtype_name, self.skin, self.min_distance = dtype, float(skin), float(min_distance)
        self.nbuilds = 0  # neighbor-list builds so far (reuse is observable)
        self._list: SkinList | None = None
        self._key: tuple | None = None

    # ------------------------------------------------------------------ the model
    def _evaluate(self, coord_ext: np.ndarray, atype_ext: np.ndarray, nlist: np.ndarray,
                  mapping: np.ndarray) -> dict[str, np.ndarray]:
        """The model on one extended frame (the hook an exported program drops into).

        coord_ext: (1, nall, 3) float64, Å; atype_ext, mapping: (1, nall) int64 (-1 on
        padding); nlist: (1, nloc, nsel) int64. Returns numpy ``energy`` (1,) eV,
        ``atom_energy`` (1, nloc) or (1, nloc, 1) eV, ``force_ext`` (1, nall, 3) =
        -dE/dcoord_ext eV/Å and ``virial`` (1, 3, 3) or (1, 9) = sum over extended atoms of
        ``force_ext (x) coord_ext``, eV.
        """
        raise NotImplementedError

    # ------------------------------------------------------------------ input checks
    def atom_types(self, atoms: Any) -> np.ndarray:
        """(natoms,) int64 model types of ``atoms``' symbols; unknown ones raise."""
        symbols = atoms.get_chemical_symbols()
        index = {t: k for k, t in enumerate(self.type_map)}
        unknown = sorted(set(symbols) - set(index))
        if unknown:
            raise ValueError(f"atoms: element(s) {unknown} not in the model's type_map="
                             f"{list(self.type_map)}")
        return np.asarray([index[s] for s in symbols], dtype=np.int64)

    @staticmethod
    def geometry(atoms: Any) -> tuple[np.ndarray, np.ndarray | None, tuple[bool, ...]]:
        """(positions (natoms, 3) Å, cell (3, 3) or None, pbc) of ``atoms``, checked."""
        coord = np.asarray(atoms.get_positions(), dtype=np.float64)
        if len(coord) == 0:
            raise ValueError("atoms: no atoms")
        bad = np.flatnonzero(~np.all(np.isfinite(coord), axis=-1))
        if bad.size:
            raise ValueError(f"atoms.positions: atom {int(bad[0])} is not finite "
                             f"({coord[bad[0]].tolist()}); {bad.size} atom(s) in all")
        pbc = tuple(bool(p) for p in atoms.get_pbc())
        if not any(pbc):
            return coord, None, pbc
        cell = np.asarray(atoms.get_cell().array, dtype=np.float64)
        if not np.all(np.isfinite(cell)):
            raise ValueError(f"atoms.cell: not finite ({cell.tolist()})")
        periodic = cell[list(np.flatnonzero(pbc))]
        norms = np.linalg.norm(periodic, axis=-1)
        if np.any(norms == 0) or np.linalg.matrix_rank(periodic, tol=1e-8 * norms.max()) \
                < len(periodic):
            raise ValueError(f"atoms: pbc={list(pbc)} needs cell vectors spanning the periodic "
                             f"axes, got cell={cell.tolist()}; set atoms.cell or "
                             "atoms.pbc=False")
        return coord, cell, pbc

    # ------------------------------------------------------------------ neighbors
    def _neighbors(self, coord: np.ndarray, atype: np.ndarray, cell: np.ndarray | None,
                   pbc: tuple[bool, ...]) -> SkinList:
        key = (atype.tobytes(), pbc, None if cell is None else cell.tobytes())
        if self._list is None or key != self._key or self.skin == 0 or \
                moved_too_far(self._list, coord):
            capacity = 1 if self._list is None else self._list.candidates.shape[1]
            self._list = build_skin_list(coord, atype, cell, pbc if cell is not None else None,
                                         self.rcut, self.skin, capacity)
            self._key = key
            self.nbuilds += 1
        return self._list

    def _check_overlap(self, sl: SkinList, coord_ext: np.ndarray, r2min: np.ndarray) -> None:
        if not r2min.size or r2min.min() >= self.min_distance**2:
            return
        i = int(np.argmin(r2min))
        cand = sl.candidates[i][sl.candidates[i] >= 0]
        d = np.linalg.norm(coord_ext[cand] - coord_ext[i], axis=-1)
        j = int(sl.mapping[cand[int(np.argmin(d))]])
        raise ValueError(f"atoms: atoms {i} and {j} are {float(d.min()):.4g} Å apart, closer "
                         f"than min_distance={self.min_distance} Å (overlapping atoms)")

    # ------------------------------------------------------------------ ASE entry point
    def calculate(self, atoms: Any = None, properties: Sequence[str] = ("energy",),
                  system_changes: Sequence[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        atoms = self.atoms
        atype = self.atom_types(atoms)
        coord, cell, pbc = self.geometry(atoms)
        sl = self._neighbors(coord, atype, cell, pbc)
        coord_ext = extended_coord(sl, coord)
        nlist, r2min = select(sl, coord_ext, self.rcut, self.nsel, self.dtype_name)
        self._check_overlap(sl, coord_ext, r2min)
        atype_ext, mapping = sl.atype_ext, sl.mapping
        nall = len(mapping)
        extra = -(-nall // self.bucket) * self.bucket - nall
        if extra:  # virtual atoms: type -1, never neighbors, far away
            far = float(np.max(coord_ext)) + 2.0 * self.rcut
            coord_ext = np.concatenate([coord_ext, np.full((extra, 3), far)])
            atype_ext = np.concatenate([atype_ext, np.full(extra, -1, np.int64)])
            mapping = np.concatenate([mapping, np.full(extra, -1, np.int64)])
        out = self._evaluate(coord_ext[None], atype_ext[None], nlist[None], mapping[None])
        force_ext = np.asarray(out["force_ext"], dtype=np.float64)[0, :nall]
        forces = np.zeros_like(coord)
        np.add.at(forces, sl.mapping, force_ext)  # every image's force onto its atom
        energy = float(np.asarray(out["energy"]).reshape(-1)[0])
        energies = np.asarray(out["atom_energy"], dtype=np.float64)[0].reshape(-1)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces,
                        "energies": energies}
        volume = 0.0 if cell is None else abs(float(np.linalg.det(cell)))
        if volume > 0:
            w = np.asarray(out["virial"], dtype=np.float64).reshape(3, 3)
            stress = stress_from_virial(np, w, np.asarray(volume))
            self.results["stress"] = stress.flat[[0, 4, 8, 5, 2, 1]]
