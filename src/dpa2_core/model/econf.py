"""Electron-configuration type-embedding input, built from the aufbau rule.

Each element becomes a 118-vector: 19 sub-shells (1s ... 7p), ``2l+1`` orbital
slots each, two entries per slot encoding its occupation (0 -> (-1,-1),
1 -> (-1,+1), 2 -> (+1,+1)), scaled by ``1/sqrt(118)``. Occupations follow the
Madelung order except for the ground-state exceptions listed in ``_EXCEPTIONS``
(public spectroscopic data, as tabulated e.g. by NIST).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["ECONF_DIM", "econf_table", "econf_vector", "ELEMENTS", "occupations", "SUBSHELLS"]

ELEMENTS = tuple(
    "H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn "
    "Ga Ge As Se Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce "
    "Pr Nd Pm Sm Eu Gd Tb Dy Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn "
    "Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl "
    "Mc Lv Ts Og".split()
)
ECONF_DIM = 118
SUBSHELLS = (
    "1s 2s 2p 3s 3p 3d 4s 4p 4d 4f 5s 5p 5d 5f 6s 6p 6d 7s 7p".split()
)
_L = {"s": 0, "p": 1, "d": 2, "f": 3}

# Ground states that deviate from the Madelung order: only the differing sub-shells.
_EXCEPTIONS = {
    "Cr": {"3d": 5, "4s": 1}, "Cu": {"3d": 10, "4s": 1}, "Nb": {"4d": 4, "5s": 1},
    "Mo": {"4d": 5, "5s": 1}, "Ru": {"4d": 7, "5s": 1}, "Rh": {"4d": 8, "5s": 1},
    "Pd": {"4d": 10, "5s": 0}, "Ag": {"4d": 10, "5s": 1}, "La": {"4f": 0, "5d": 1},
    "Ce": {"4f": 1, "5d": 1}, "Gd": {"4f": 7, "5d": 1}, "Pt": {"5d": 9, "6s": 1},
    "Au": {"5d": 10, "6s": 1}, "Ac": {"5f": 0, "6d": 1}, "Th": {"5f": 0, "6d": 2},
    "Pa": {"5f": 2, "6d": 1}, "U": {"5f": 3, "6d": 1}, "Np": {"5f": 4, "6d": 1},
    "Cm": {"5f": 7, "6d": 1}, "Ds": {"6d": 9, "7s": 1}, "Rg": {"6d": 10, "7s": 1},
}


def _capacity(shell: str) -> int:
    return 2 * (2 * _L[shell[1]] + 1)


def occupations(symbol: str) -> dict[str, int]:
    """Electrons per sub-shell of the neutral ground state of ``symbol``."""
    if symbol not in ELEMENTS:
        raise ValueError(f"symbol={symbol!r}: not an element symbol H ... Og")
    left = ELEMENTS.index(symbol) + 1
    order = sorted(SUBSHELLS, key=lambda s: (int(s[0]) + _L[s[1]], int(s[0])))
    occ = dict.fromkeys(SUBSHELLS, 0)
    for shell in order:
        occ[shell] = min(left, _capacity(shell))
        left = left - occ[shell]
    occ.update(_EXCEPTIONS.get(symbol, {}))
    return occ


def _encode(shell: str, n: int) -> list[int]:
    slots = 2 * _L[shell[1]] + 1
    unpaired = min(n, 2 * slots - n)
    paired = (n - unpaired) // 2
    codes = {2: (1, 1), 1: (-1, 1), 0: (-1, -1)}
    filling = [2] * paired + [1] * unpaired + [0] * (slots - paired - unpaired)
    return [v for k in filling for v in codes[k]]


@functools.cache
def econf_vector(symbol: str) -> tuple[int, ...]:
    """The unscaled ±1 vector (length 118) of ``symbol``."""
    occ = occupations(symbol)
    return tuple(v for shell in SUBSHELLS for v in _encode(shell, occ[shell]))


def econf_table(type_map: tuple[str, ...] | list[str], dtype: str = "float64") -> np.ndarray:
    """``(ntypes, 118)`` type-embedding input for ``type_map``, scaled by ``1/sqrt(118)``."""
    rows = [econf_vector(t) for t in type_map]
    return np.asarray(rows, dtype=np.float64).astype(dtype) / np.asarray(
        math.sqrt(ECONF_DIM), dtype=dtype
    )
