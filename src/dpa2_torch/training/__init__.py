"""Training with the torch shim: ``dpa2 train --backend torch`` and ``dpa2 test``.

``trainer`` (the loop, :class:`Trainer`), ``batches`` (frames + cached neighbor lists),
``checkpoint``, ``loss``, ``stats`` (statistics set on the model), ``dist`` (torchrun),
``evaluate`` (errors on data systems).
"""

from .trainer import Trainer, cli_train

__all__ = ["Trainer", "cli_train"]
