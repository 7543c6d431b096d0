"""`grove init`: write a starter PodCliqueSet (issue #10)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from grove.starter.render import DEFAULT_IMAGE, LAYOUTS, Starter, StarterError, render


def cmd_init(args: argparse.Namespace) -> int:
    starter = Starter(
        layout=args.layout,
        name=args.name,
        replicas=args.replicas,
        workers=args.workers,
        units=args.units,
        image=args.image,
        frontend_image=args.frontend_image or args.image,
        model=args.model,
        gpus=args.gpus,
        mig=args.mig,
        compute_domain=args.compute_domain,
        sandbox=args.sandbox,
    )
    try:
        text = render(starter)
    except StarterError as error:
        print(f"grove init: {error}", file=sys.stderr)
        return 2
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "init",
        help="write a starter PodCliqueSet for a common inference layout",
        description="Write a starter PodCliqueSet (it passes `grove validate`) to stdout or --output.",
    )
    p.add_argument("--layout", required=True, choices=LAYOUTS, help="agg, disagg-single or disagg-multinode")
    p.add_argument("--name", default="inference", help="PodCliqueSet name (default inference)")
    p.add_argument("--replicas", type=int, default=1, help="PodCliqueSet replicas (default 1)")
    p.add_argument("--workers", type=int, default=2, help="pods per clique, or workers per leader for disagg-multinode")
    p.add_argument("--units", type=int, default=1, help="leader+worker units per scaling group (disagg-multinode)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help="model server image")
    p.add_argument("--frontend-image", default=None, help="frontend image (default: --image)")
    p.add_argument("--model", default="Qwen/Qwen3-0.6B", help="model passed as --model to the servers")
    p.add_argument("--gpus", type=int, default=0, help="whole GPUs per model-server pod (DRA claims)")
    p.add_argument("--mig", metavar="PROFILE", help="one MIG slice per model-server pod, e.g. 1g.10gb")
    p.add_argument("--compute-domain", action="store_true", help="join model-server pods in a ComputeDomain")
    p.add_argument("--sandbox", action="store_true", help="tolerate the sandbox's KWOK nodes, tiny requests")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=cmd_init)
