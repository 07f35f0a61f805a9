"""Checks shared by the configuration dataclasses: field types against annotations,
positive sizes, lists frozen to tuples, deepmd-kit's per-type neighbor lists summed, and
the dict -> dataclass builder that names an unknown or missing key. Every failure is one
``ValueError`` naming the key."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

__all__ = ["SEL_KEYS", "build", "check_fields", "check_type", "fail", "freeze", "positive",
           "sum_sel"]


def fail(key: str, value: Any, why: str) -> None:
    raise ValueError(f"{key}={value!r}: {why}")


def check_type(key: str, value: Any, kind: type | tuple[type, ...]) -> None:
    ok = isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, float))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        fail(key, value, f"must be of type {names}")


def positive(key: str, value: Any, kind: type = int) -> None:
    check_type(key, value, kind)
    if not value > 0:
        fail(key, value, "must be positive")


def check_fields(obj: Any, prefix: str) -> None:
    """Type-check every field against its annotation."""
    kinds = {"int": int, "float": float, "bool": bool, "str": str}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        key = f"{prefix}{f.name}"
        kind = kinds.get(str(f.type))
        if kind is not None:
            check_type(key, value, kind)
        elif str(f.type) == "tuple[int, ...]":
            if not isinstance(value, tuple) or not value:
                fail(key, value, "must be a non-empty list of positive ints")
            for v in value:
                positive(key, v)


def freeze(value: Any) -> Any:
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    return value


# neighbor counts deepmd-kit accepts as a list of ints (one per type, or one total): it
# sums the list (``RepinitArgs(nsel=[7])`` is nsel=7), so this reads them the same way
SEL_KEYS = ("nsel", "three_body_sel")


def sum_sel(key: str, value: Any) -> Any:
    if not isinstance(value, list | tuple):
        return value
    if not value or any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in value):
        fail(key, value, "a list of neighbor counts must hold non-negative ints")
    return sum(value)


def build(cls: type, d: Mapping[str, Any], prefix: str, aliases: Mapping[str, str] = {}):
    if not isinstance(d, Mapping):
        fail(prefix.rstrip("."), d, "must be a dict")
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in d.items():
        name = aliases.get(key, key)
        if name not in names:
            fail(f"{prefix}{key}", value, f"unknown key; accepted: {sorted(names)}")
        kwargs[name] = sum_sel(f"{prefix}{key}", value) if name in SEL_KEYS else \
            freeze(value)
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.name not in kwargs and f.default is dataclasses.MISSING
    ]
    if missing:
        raise ValueError(f"{prefix}{missing[0]}: required key is missing")
    return cls(**kwargs)
