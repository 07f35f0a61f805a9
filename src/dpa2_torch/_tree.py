"""Parameter storage: the core's nested dict/list pytree as nested ``nn.Module``s.

A dict becomes a :class:`ParamNode` (array leaves are ``nn.Parameter``s or buffers,
sub-trees are child modules), a list of dicts an ``nn.ModuleList`` and a list of
arrays an ``nn.ParameterList``. ``state_dict`` keys are therefore the pytree paths
joined with ``"."`` (``repformer.layers.0.linear1.w``). :func:`tree_of` rebuilds the
pytree from the live tensors, so the core receives the Parameters themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from dpa2_core.array_api import to_numpy
from dpa2_core.model.params import STATISTICS

__all__ = [
    "as_tensor", "attach", "build", "ParamNode", "stats_kind", "to_numpy_tree",
    "torch_dtype_name", "tree_of",
]

# how a leaf is stored: a trained Parameter, a frozen Parameter or a buffer
TRAIN, FROZEN, BUFFER = "train", "frozen", "buffer"
Kind = Callable[[tuple], str]


def as_tensor(x: Any) -> torch.Tensor:
    """An owned torch copy of a numpy or torch array (never aliases the input)."""
    if isinstance(x, torch.Tensor):
        return x.detach().clone()
    return torch.from_numpy(np.array(to_numpy(x), copy=True))  # numpy, jax, any array API


def _is_leaf(x: Any) -> bool:
    return not isinstance(x, dict | list)


def _leaf(x: Any, kind: str) -> torch.Tensor:
    t = as_tensor(x)
    return t if kind == BUFFER else nn.Parameter(t, requires_grad=kind == TRAIN)


def build(tree: Any, kind: Kind, prefix: tuple = ()) -> nn.Module:
    """The module holding ``tree`` (a dict, a list of dicts or a list of arrays)."""
    if isinstance(tree, dict):
        node = ParamNode()
        attach(node, tree, kind, prefix)
        return node
    if all(_is_leaf(x) for x in tree):
        kinds = [kind((*prefix, i)) for i in range(len(tree))]
        if BUFFER in kinds:
            raise ValueError(f"{'/'.join(map(str, prefix))}: lists of buffers are not supported")
        return nn.ParameterList([_leaf(x, k) for x, k in zip(tree, kinds, strict=True)])
    return nn.ModuleList([build(x, kind, (*prefix, i)) for i, x in enumerate(tree)])


def attach(module: nn.Module, tree: dict, kind: Kind, prefix: tuple = ()) -> None:
    """Register every entry of the dict ``tree`` on ``module`` under its own key."""
    for key, value in tree.items():
        path = (*prefix, key)
        if _is_leaf(value):
            k = kind(path)
            if k == BUFFER:
                module.register_buffer(key, _leaf(value, k))
            else:
                module.register_parameter(key, _leaf(value, k))
        else:
            module.add_module(key, build(value, kind, path))
    module._tree_keys = tuple(tree)


class ParamNode(nn.Module):
    """One dict of the pytree; ``_tree_keys`` keeps the dict's keys in order."""

    _tree_keys: tuple = ()


def tree_of(module: nn.Module) -> Any:
    """The pytree stored in ``module``: live Parameters and buffers, never detached."""
    if isinstance(module, nn.ParameterList):
        return list(module)
    if isinstance(module, nn.ModuleList):
        return [tree_of(m) for m in module]
    out = {}
    for key in module._tree_keys:
        value = getattr(module, key)
        out[key] = value if isinstance(value, torch.Tensor) else tree_of(value)
    return out


def stats_kind(trainable: Callable[[tuple], bool]) -> Kind:
    """Statistics (``davg``/``dstd``) are buffers; the rest follows ``trainable(path)``."""

    def kind(path: tuple) -> str:
        if path[-1] in STATISTICS:
            return BUFFER
        return TRAIN if trainable(path) else FROZEN

    return kind


def to_numpy_tree(tree: Any) -> Any:
    """Host numpy copy of a pytree of tensors."""
    if isinstance(tree, dict):
        return {k: to_numpy_tree(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [to_numpy_tree(v) for v in tree]
    return tree.detach().cpu().numpy().copy()


def torch_dtype_name(dtype: torch.dtype) -> str:
    """``torch.float64`` -> ``"float64"`` (the core's precision names)."""
    return str(dtype).removeprefix("torch.")
