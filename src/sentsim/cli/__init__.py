"""The ``sentsim`` command: a thin shell over the library.

Each command group lives in its own module with a ``register(subparsers)`` function that adds its
parsers and sets ``func``; :func:`main` turns any :class:`~sentsim.errors.SentsimError` (and a few
plain input errors) into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sentsim.choices import Precision
from sentsim.errors import SentsimError
from sentsim.settings import PRECISION_ENV

_PACKAGE = Path(__file__).resolve().parent.parent

# Command modules, in the order they appear in --help.
_MODULES = ["basic", "evaluate", "train", "augsbert", "search", "duplicates", "serve"]


def build_parser() -> argparse.ArgumentParser:
    """Return the full argument parser with every registered command group."""
    parser = argparse.ArgumentParser(
        prog="sentsim",
        description="Sentence similarity offline: encode, compare, evaluate, train, search.",
    )
    from sentsim import __version__

    parser.add_argument("--version", action="version", version=f"sentsim {__version__}")
    parser.add_argument(
        "--precision",
        choices=[p.value for p in Precision],
        help="what models compute in when they encode and score: fp32 (default, or "
        "$SENTSIM_PRECISION), bf16 (matrix products in bfloat16), auto (bf16 where the CPU has "
        "AMX or AVX512-BF16, or on a GPU that supports it), int8 (on the CPU, for using models, "
        "not for commands that write one: linear layers in 8-bit integers, faster where bf16 "
        "is not native; moves scores more than bf16); "
        "training: see --mixed-precision",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _MODULES:
        try:
            module = importlib.import_module(f"sentsim.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"sentsim.cli.{name}":
                continue  # a command group not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (0 success, 1 user error, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # what the user typed, for model cards (main([...]) from Python is not sys.argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    saved = os.environ.get(PRECISION_ENV)
    if args.precision:
        os.environ[PRECISION_ENV] = args.precision  # every model this command loads takes it
    try:
        _refuse_int8(args)
        status = args.func(args)
    except SentsimError as exc:
        print(f"sentsim: error: {exc}", file=sys.stderr)
        return 1
    except (TypeError, ValueError) as exc:
        if not _raised_by_sentsim(exc):
            raise
        print(f"sentsim: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("sentsim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `sentsim ... | head`: the reader left; stop without a traceback
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the exit flush too
        return 141
    finally:
        if args.precision:
            _restore(PRECISION_ENV, saved)
    return int(status or 0)


def _refuse_int8(args: argparse.Namespace) -> None:
    """Refuse int8 for a command that writes a model (its ``writes_model``), before it reads a file.

    int8 is for using a model. Such a command keeps float32 weights and chose them by dev scores
    its models computed in the command's precision: in int8, a run selected its best epoch (or
    fusion weights) on int8 scores, saved float32 weights and reported fp32.
    """
    command = getattr(args, "writes_model", None)
    if command is None or os.environ.get(PRECISION_ENV, "").strip().lower() != Precision.INT8:
        return
    given, fix = (
        ("--precision int8", "drop --precision int8")
        if args.precision
        else (f"{PRECISION_ENV}=int8", f"run it with --precision fp32 (or {PRECISION_ENV} unset)")
    )
    raise ValueError(
        f"{given} is for using models (encode, similarity, eval, search, serve, duplicates, "
        f"mine), not for `sentsim {command}`, which writes one: it makes float32 weights from "
        f"float32 scores (and chooses an epoch or fusion weights on them). {fix[0].upper()}"
        f"{fix[1:]}, then use the model it writes with `sentsim --precision int8 ...`"
    )


def _restore(name: str, value: str | None) -> None:
    """Put an environment variable back as it was (``None``: unset)."""
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value


def _raised_by_sentsim(exc: BaseException) -> bool:
    """Return whether the innermost frame of ``exc`` is sentsim's own validation code."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    # Compare with the package folder, not a "/sentsim/" substring: a checkout named sentsim holds
    # .venv/, and third-party bugs in there must keep their traceback.
    if tb is None:
        return False
    return Path(tb.tb_frame.f_code.co_filename).resolve().is_relative_to(_PACKAGE)
