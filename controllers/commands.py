"""`grove operator`: run the PodCliqueSet operator against the current kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from grove.expansion.startup import DEFAULT_STARTUP_WAIT_IMAGE


def operator_main(args: argparse.Namespace) -> int:
    from controllers.operator import configure_logging, run
    from controllers.runtime import Options

    configure_logging(args.verbose)
    options = Options(
        namespace=args.namespace,
        concurrency=args.concurrency,
        workers=args.workers,
        qps=args.qps,
        burst=args.burst,
        startup_wait_image=args.startup_wait_image,
        verbose=args.verbose,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run(options, stop)

    asyncio.run(main())
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the PodCliqueSet operator",
        description="Reconcile PodCliqueSets into PodCliques, scaling groups, PodGangs, Services and Pods.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--namespace", "-n", help="watch one namespace (default: all namespaces)")
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch all namespaces (the default)")
    # 16: every concurrent write holds a TLS connection (~300 KiB with asyncio's SSL buffers); the API server of
    # a small cluster is saturated well before 16 are in flight (issue #13: peak RSS).
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent API writes (default 16)")
    parser.add_argument("--workers", type=int, default=64, help="concurrent reconciles (default 64)")
    parser.add_argument("--qps", type=float, default=0.0, help="client-side write QPS limit (default: none)")
    parser.add_argument("--burst", type=int, default=0, help="burst for --qps (default 1.5 x qps)")
    parser.add_argument(
        "--startup-wait-image",
        default=DEFAULT_STARTUP_WAIT_IMAGE,
        help=f"image of the startup-order init container (default {DEFAULT_STARTUP_WAIT_IMAGE})",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    parser.set_defaults(func=operator_main)
