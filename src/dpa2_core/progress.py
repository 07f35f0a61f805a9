"""Progress bars (tqdm, an optional dependency) for long host-side loops."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["progress_bar", "progress_iter"]


def _tqdm(required: bool) -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError as err:
        if required:
            raise ImportError("a progress bar needs tqdm: pip install 'dpa2[io]'") from err
        return None
    return tqdm


def progress_bar(show: bool, *, required: bool = False, **kwargs: Any) -> Any:
    """A ``tqdm`` bar (``kwargs`` go to it) when ``show``, else None. Without tqdm: None,
    or an ImportError when the caller asked for the bar explicitly (``required``)."""
    tqdm = _tqdm(required) if show else None
    return None if tqdm is None else tqdm(dynamic_ncols=True, **kwargs)


def progress_iter(items: Iterable, show: bool, **kwargs: Any) -> Iterable:
    """``items`` behind a tqdm bar when ``show`` and tqdm is installed, else as they are."""
    tqdm = _tqdm(False) if show else None
    return items if tqdm is None else tqdm(items, dynamic_ncols=True, **kwargs)
