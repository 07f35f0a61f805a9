"""The backend-neutral pieces of training: ``settings`` (deepmd-kit's training input),
``sampling``, ``loss``, ``lcurve`` and ``statistics`` (streaming input statistics and the
energy bias). The torch and JAX trainers are in ``dpa2_torch.training`` and
``dpa2_jax.training``.
"""

__all__: list[str] = []
