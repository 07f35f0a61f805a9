"""``python -m dpa2_cli``: the ``dpa2`` command."""

import sys

from .main import main

__all__: list[str] = []

sys.exit(main())
