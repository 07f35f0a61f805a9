"""Structures to descriptor inputs: periodic images, mapping and sorted neighbor lists.

``builder`` (:func:`build_neighbor_list`, engine choice), ``reference`` (the dense
array-API builder), ``vesin_engine`` (the O(N) engine), ``cells`` (cell checks, folding into
the cell, image shifts) and ``extension`` (the fixed index record of a ghost extension and
:func:`extend_coord`). Depends on ``model`` only.
"""

__all__: list[str] = []
