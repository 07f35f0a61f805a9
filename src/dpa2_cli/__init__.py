"""dpa2_cli: the ``dpa2`` command, the one package that imports the core and both shims."""

from .main import build_parser, main

__all__ = ["build_parser", "main"]
