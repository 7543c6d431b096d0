"""`grove render FILE [--tree]`: the objects a PodCliqueSet expands to, without a cluster, from the same code
the operator runs."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import yaml

from grove.expansion import graph, spec, startup


def _documents(path: str) -> list[dict[str, Any]]:
    with sys.stdin if path == "-" else open(path, encoding="utf-8") as handle:
        return [d for d in yaml.safe_load_all(handle) if isinstance(d, dict)]


def render(args: argparse.Namespace) -> int:
    status = 0
    out: list[str] = []
    for doc in _documents(args.file):
        if doc.get("kind") != "PodCliqueSet":
            continue
        errors = spec.validate(doc)
        if errors:
            for error in errors:
                print(f"{args.file}: {error.field}: {error.message}", file=sys.stderr)
            status = 1
            continue
        result = graph.expand(doc, startup_wait_image=args.startup_wait_image)
        if args.tree:
            out.append(graph.tree(result))
        else:
            out.append(yaml.safe_dump_all(result.objects(), sort_keys=False).rstrip("\n"))
    if out:
        print(("\n" if args.tree else "\n---\n").join(out))
    return status


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="print the objects a PodCliqueSet expands to (no cluster needed)",
        description="Expand PodCliqueSets from FILE ('-' for stdin) into Services, PodGangs, PodCliques, "
        "PodCliqueScalingGroups and Pods, exactly as the operator would create them.",
    )
    parser.add_argument("file", metavar="FILE")
    parser.add_argument("--tree", action="store_true", help="print an ownership tree instead of YAML")
    parser.add_argument("--startup-wait-image", default=startup.DEFAULT_STARTUP_WAIT_IMAGE)
    parser.set_defaults(func=render)
