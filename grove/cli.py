"""The `grove` command: one entry point; each area of the project registers its own subcommands."""

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

# Modules that contribute subcommands through `register(subparsers)` (docs/TEAM.md).
COMMAND_MODULES = (
    "grove.api.commands",
    "grove.expansion.commands",
    "controllers.commands",
    "grove.dra.commands",
    "grove.sandbox",
    "grove.starter.commands",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grove",
        description="Grove-compatible workload API for AI inference on Kubernetes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Behave like other command-line tools when the reader goes away (`grove validate ... | head`).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
