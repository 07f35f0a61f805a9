"""The traced math: everything that runs on arrays of any array-API namespace.

``config`` and ``params`` (frozen configuration, parameter spec and initialisation),
``activations`` and ``layers`` (dense, embedding net, layer norm), ``type_embedding``
(+ ``econf``), ``env_mat``, ``repinit`` (+ three-body), ``attention``, ``repformer``,
``dpa2`` (the descriptor), ``checks`` (input checks), ``statistics`` (the pure part),
``fitting`` (energy fitting net) and ``type_map``. Imports nothing from ``neighbors``,
``io`` or ``training``.
"""

__all__: list[str] = []
