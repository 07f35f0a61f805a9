"""``dpa2 train``: the backend trainers behind one set of options."""

from __future__ import annotations

import argparse

from .models import backend_module

__all__ = ["cmd_train"]


def cmd_train(args: argparse.Namespace) -> int:
    trainer = backend_module(args.backend, f"dpa2_{args.backend}.training.trainer")
    return trainer.cli_train(args) or 0
