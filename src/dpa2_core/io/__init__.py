"""Files: deepmd-kit descriptor and model files (reader beside writer), our own format,
structures (ASE and deepmd-format systems) and deepmd-kit's npy training data.

``deepmd_reader`` / ``deepmd_writer`` (serialized ``DescrptDPA2`` dicts), ``deepmd_files``
(``.dp``/``.yaml``/``.json``), ``deepmd_model`` (whole energy models), ``own_format``
(our ``.npz``), ``deepmd_model_writer`` (whole models back into deepmd-kit:
:func:`save_deepmd_model`), ``structures`` and ``npy_data``. Depends on ``model`` and ``neighbors``.
"""

from .deepmd_model_writer import save_deepmd_model

__all__ = ["save_deepmd_model"]
