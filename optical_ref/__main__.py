"""The one command line of optical-ref: ``python -m optical_ref COMMAND ...``.

Each command lives in its own module; this file only parses arguments and dispatches, importing the
heavy modules (torch, transformers) only for the command that needs them.
"""
from __future__ import annotations

import argparse
import sys

from . import __version__

COMMANDS = {
    # name: (module, one-line help)
    "compare": ("optical_ref.experiment.compare", "the OT-vs-KD comparison on reduced MTOP (the main job)"),
    "report": ("optical_ref.experiment.rebuild",
               "rebuild a compare folder's summary, CSV and figures from its files, without training"),
    "distil": ("optical_ref.experiment.distil", "distil your own student from any bitext file and save it as a standard checkpoint"),
    "select": ("optical_ref.experiment.selection", "label-free tuning on the dev bitext, the same budget for every method (lr x knob x steps)"),
    "data-summary": ("optical_ref.data.summary", "where the data is, what it holds, checksums"),
    "fetch": ("optical_ref.data.fetch", "download a dataset once into the user cache: mtop-reduced | mtod | mtop-official | all"),
    "encoder": ("optical_ref.pretrained", "encoder prepare e5-small: build the pretrained checkpoint folder once"),
    "bench": ("optical_ref.experiment.bench", "benchmarks: sinkhorn | distil | freeze"),
    "check": ("optical_ref.classroom.check", "check an exercise (check EXERCISE --impl FILE.py:FUNCTION, --list) or grade a class (--grade DIR)"),
    "reference": ("optical_ref.classroom.reference.cli", "reference outputs: regenerate | verify --impl FILE.py:FUNCTION"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m optical_ref",
        description="optical-ref: optimal-transport distillation (OPTICAL) vs knowledge distillation, "
        "a readable reference implementation.",
    )
    parser.add_argument("--version", action="version", version=f"optical-ref {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        try:
            mod = __import__(module, fromlist=["add_arguments"])
        except ModuleNotFoundError as err:
            if err.name and err.name.startswith("optical_ref"):
                continue  # a command whose module is not written yet
            raise
        command_parser = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip().splitlines()[0])
        mod.add_arguments(command_parser)
        command_parser.set_defaults(run=mod.main)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.run(args) or 0)
    except (ValueError, OSError) as err:  # bad input or missing files: one clear line, no traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:             # Ctrl-C: what is kept is each command's own business (runs.jsonl, .part)
        print(f"interrupted: {args.command} stopped; finished work is kept (compare: continue with --resume DIR)",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
