"""The `grove` command: one entry point; each area of the project registers its own subcommands."""

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence

# Modules that contribute subcommands through `register(subparsers)` (docs/TEAM.md), by the commands each one
# registers. Only the module of the command being run is imported (issue #13: `grove operator` would otherwise
# carry cel-python, lark, jinja2 and the kubernetes client of the other commands, about 10 MiB of RSS).
COMMAND_MODULES = {
    "grove.api.commands": ("crds", "validate"),
    "grove.expansion.commands": ("render",),
    "controllers.commands": ("operator",),
    "grove.dra.commands": ("driver",),
    "grove.sandbox": ("sandbox",),
    "grove.starter.commands": ("init",),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser for `command` only (its module alone is imported), or for every command (help, errors)."""
    parser = argparse.ArgumentParser(
        prog="grove",
        description="Grove-compatible workload API for AI inference on Kubernetes.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, commands in COMMAND_MODULES.items():
        if command is None or command in commands:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Behave like other command-line tools when the reader goes away (`grove validate ... | head`).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {name for names in COMMAND_MODULES.values() for name in names}
    parser = build_parser(argv[0] if argv and argv[0] in known else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
