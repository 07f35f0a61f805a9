"""The ``dpa2`` command: describe, eval, test, train, md and freeze DPA-2 models.

Every error caused by the input (a missing or damaged file, a model of the wrong kind, an
element the model does not know, a bad option) is one line on stderr naming the file,
and the exit status is 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn

from dpa2_bench import suite as bench
from dpa2_core import __version__

from . import freeze, md
from .describe import OUTPUT_FIELDS, cmd_describe
from .evaluate import cmd_eval
from .models import BACKENDS, DEVICES
from .testing import cmd_test
from .train import cmd_train

__all__ = ["OUTPUT_FIELDS", "build_parser", "main"]

MODEL_HELP = ("model file, recognised by its content: a deepmd-kit .dp/.yaml/.json model or "
              ".pt training checkpoint, or a checkpoint of dpa2 train (torch .pt, jax .npz)")
EPILOG = "Errors caused by the input are one line on stderr, exit status 2."


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``dpa2 eval: error: ...``) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown after every option that has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "%(default)" in text:
            return text
        return f"{text} (default: %(default)s)"


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value}: must be a positive number of steps")
    return value


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=BACKENDS, default=None,
                   help="array backend that runs the model (default: torch, or an exported "
                   "artifact's own framework)")
    p.add_argument("--device", choices=DEVICES, default="cpu",
                   help="where the model runs")
    p.add_argument("--head", default=None,
                   help="head of a multi-task deepmd-kit .pt checkpoint (default: the first)")


def _describe_parser(sub: Any) -> None:
    """The ``describe`` sub-command."""
    d = sub.add_parser("describe", help="compute the descriptor of every atom",
                       formatter_class=_Help, epilog=EPILOG,
                       description="Descriptor (and rot_mat, g2, h2, sw, neighbor lists) of "
                       "every atom of a structure, written to one .npz.")
    d.add_argument("structure", nargs="?", help="structure file (any format ASE reads) or a "
                   "deepmd-format system directory; without it: a bundled 192-atom water "
                   "frame")
    src = d.add_mutually_exclusive_group()
    src.add_argument("--model", help=MODEL_HELP + ", or a dpa2 descriptor .npz")
    src.add_argument("--config", help="JSON: a deepmd-kit input or its descriptor section "
                     "(an untrained model with random parameters)")
    d.add_argument("--head", default=None, help="head of a multi-task deepmd-kit .pt "
                   "checkpoint (default: the first)")
    d.add_argument("--frames", help="frame selection in python slice syntax, e.g. 0:10:2 "
                   "(default: every frame)")
    d.add_argument("--seed", type=int, default=0,
                   help="seed of the random parameters without --model")
    d.add_argument("--device", choices=DEVICES, default="cpu", help="where the descriptor "
                   "runs (cpu: numpy; cuda: torch)")
    d.add_argument("-o", "--output", default="descriptor.npz", help="output file (.npz)")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_describe)


def _eval_parser(sub: Any) -> None:
    """The ``eval`` sub-command."""
    e = sub.add_parser("eval", help="energies, forces and stress of a structure file",
                       formatter_class=_Help, epilog=EPILOG,
                       description="Energy, per-atom energies, forces and stress of every "
                       "frame of a structure file, written as extxyz or npz.")
    e.add_argument("structure", help="structure file (any format ASE reads) or a "
                   "deepmd-format system directory")
    e.add_argument("--model", required=True, help=MODEL_HELP)
    _run_options(e)
    e.add_argument("--frames", help="frame selection in python slice syntax, e.g. 0:10:2 "
                   "(default: every frame)")
    e.add_argument("-o", "--output", default="eval.extxyz",
                   help="output file: .extxyz/.xyz (ASE extended xyz) or .npz")
    e.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_eval)


def _test_parser(sub: Any) -> None:
    """The ``test`` sub-command."""
    t = sub.add_parser("test", help="energy and force errors of a model on labelled data",
                       formatter_class=_Help, epilog=EPILOG,
                       description="Energy and force MAE/RMSE of a model on deepmd-format "
                       "systems, as deepmd-kit's dp test.")
    t.add_argument("--model", required=True, help=MODEL_HELP)
    t.add_argument("--system", nargs="+", required=True, help="deepmd-format system "
                   "directories, or folders holding systems (searched like dpa2 train)")
    t.add_argument("--numb-test", dest="numb_test", type=int, default=None,
                   help="frames tested per system (default: all)")
    t.add_argument("-d", "--detail-file", dest="detail_file", default=None,
                   help="prefix of per-frame detail files PREFIX.e.out, "
                   "PREFIX.e_peratom.out, PREFIX.f.out (deepmd's dp test -d)")
    _run_options(t)
    t.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_test)


def _train_parser(sub: Any) -> None:
    """The ``train`` sub-command."""
    r = sub.add_parser("train", help="train an energy model from a deepmd-kit input file",
                       formatter_class=_Help, epilog=EPILOG,
                       description="Train an energy model from a deepmd-kit training input "
                       "(JSON); lcurve.out, checkpoints and a learning-curve PNG in --output.")
    r.add_argument("input", help="deepmd-kit training input (JSON)")
    r.add_argument("--backend", choices=BACKENDS, default="torch",
                   help="array backend that trains")
    r.add_argument("--device", choices=DEVICES, default=None,
                   help="where training runs (default: cuda when available, else cpu)")
    r.add_argument("--output", default=".", help="folder for checkpoints and lcurve.out")
    r.add_argument("--steps", type=_positive, default=None,
                   help="number of steps, overriding training.numb_steps")
    r.add_argument("--restart", default=None, help="checkpoint of dpa2 train to resume "
                   "from (either backend's)")
    r.add_argument("--force", action="store_true", help="start a new run even if --output "
                   "holds another run's checkpoints (they are removed)")
    r.set_defaults(func=cmd_train)


def _bench_parser(sub: Any) -> None:
    """The ``bench`` sub-command (:mod:`dpa2_bench`)."""
    b = sub.add_parser("bench", help="time dpa2 against deepmd-kit (ratios, parity)",
                       formatter_class=_Help, epilog=EPILOG, description=bench.DESCRIPTION)
    bench.add_arguments(b)
    b.set_defaults(func=bench.run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="dpa2", description="DPA-2 descriptors and energy models: "
                     "describe, eval, test, train, md, freeze and bench (torch or JAX).",
                     epilog=EPILOG, formatter_class=_Help)
    parser.add_argument("--version", action="version", version=f"dpa2 {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)

    _describe_parser(sub)
    _eval_parser(sub)
    _test_parser(sub)
    _train_parser(sub)
    md.add_parser(sub, formatter_class=_Help, epilog=EPILOG)
    freeze.add_parser(sub, formatter_class=_Help, epilog=EPILOG)
    _bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError, ImportError) as err:  # OSError: missing, unreadable, full disk
        line = " ".join(str(err).split()) or type(err).__name__
        print(f"dpa2 {args.command}: error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dpa2 {args.command}: interrupted", file=sys.stderr)
        return 130
