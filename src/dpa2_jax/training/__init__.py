"""Training with the JAX shim and optax: ``dpa2 train --backend jax``.

``trainer`` (the jit step and the loop), ``data`` (batches with host-built ghost
extensions), ``checkpoint`` (``.npz`` checkpoints with an exact restart).
"""

from .trainer import cli_train, train, train_step

__all__ = ["cli_train", "train", "train_step"]
