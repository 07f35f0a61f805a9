"""The backend-neutral pieces of training: ``settings`` (deepmd-kit's training input),
``sampling``, ``loss``, ``lcurve`` and ``statistics`` (streaming input statistics and the
energy bias), ``checkpoints`` (the one atomic writer and rotation rule of checkpoints, the
output-folder guard, sampler states for exact restarts), ``guards`` (SIGTERM/Ctrl-C,
non-finite losses), ``metrics`` (validation mean, error metrics) and ``faults`` (fault
injection for the tests). The torch and JAX trainers are in ``dpa2_torch.training`` and
``dpa2_jax.training``.
"""

__all__: list[str] = []
