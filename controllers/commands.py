"""`grove operator`: run the PodCliqueSet operator against the current kubeconfig (or in-cluster)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import signal
import socket
import sys
import uuid

from grove.expansion.startup import DEFAULT_STARTUP_WAIT_IMAGE


def tune_gc() -> None:
    """CPython's full collections scan every tracked object. In one instrumented 1000-pod deploy they ran 24
    times at 50-250 ms each, and all collections took 6.8 s of wall time, mostly over objects that are never
    garbage (modules, kopf, the caches). Objects alive once everything is imported are frozen out of
    collections. The young generation is collected ten times less often, so full
    collections (one per 100 young ones) are rarer as well. Measured: collections 1.5 s, deploy CPU 9.1 s
    instead of 10.9-12.2 s (`bench/scale.py`, issue #13)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(7_000, 10, 10)


def operator_main(args: argparse.Namespace) -> int:
    from controllers.leader import LeaseLost
    from controllers.operator import configure_logging, run
    from controllers.runtime import Options

    configure_logging(args.verbose)
    tune_gc()
    options = Options(
        namespaces=args.namespace or [],
        concurrency=args.concurrency,
        workers=args.workers,
        qps=args.qps,
        burst=args.burst,
        startup_wait_image=args.startup_wait_image,
        verbose=args.verbose,
        leader_elect=args.leader_elect,
        lease_name=args.lease_name,
        lease_namespace=args.lease_namespace,
        identity=args.identity or f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}",
        lease_duration=args.lease_duration,
        renew_deadline=args.renew_deadline,
        retry_period=args.retry_period,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        gang_scheduling=args.gang_scheduling,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await run(options, stop)

    try:
        asyncio.run(main())
    except LeaseLost as error:  # another replica may lead now: exit, the Deployment restarts us as a follower
        print(f"grove operator: {error}", file=sys.stderr)
        return 1
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operator",
        help="run the PodCliqueSet operator",
        description="Reconcile PodCliqueSets into PodCliques, scaling groups, PodGangs, Services and Pods.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace", "-n", action="append", help="watch this namespace (repeatable; default: all namespaces)"
    )
    scope.add_argument("--all-namespaces", "-A", action="store_true", help="watch all namespaces (the default)")
    # 32: every concurrent write holds a TLS connection (~300 KiB with asyncio's SSL buffers, issue #13: peak
    # RSS), and with 16 the operator's creates, not the API server, set the pace of a burst (issue #13: 1000 pods
    # schedulable 1.6 s sooner, Ready 1.31x instead of 1.44x the gang floor, 2-3 MiB more peak RSS).
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent API writes (default 32)")
    parser.add_argument("--workers", type=int, default=64, help="concurrent reconciles (default 64)")
    parser.add_argument("--qps", type=float, default=0.0, help="client-side write QPS limit (default: none)")
    parser.add_argument("--burst", type=int, default=0, help="burst for --qps (default 1.5 x qps)")
    parser.add_argument(
        "--startup-wait-image",
        default=DEFAULT_STARTUP_WAIT_IMAGE,
        help=f"image of the startup-order init container (default {DEFAULT_STARTUP_WAIT_IMAGE})",
    )
    parser.add_argument(
        "--gang-scheduling",
        choices=["auto", "off"],
        default="auto",
        help="auto (default): gang-schedule through kube-scheduler's Workload API when the cluster serves it; "
        "off: PodGangs only, pods are scheduled one by one (Grove's default-scheduler backend)",
    )
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    election = parser.add_argument_group("leader election (a coordination.k8s.io Lease; followers write nothing)")
    election.add_argument("--leader-elect", action="store_true", help="run only while holding the Lease")
    election.add_argument("--lease-name", default="grove-operator", help="Lease name (default grove-operator)")
    election.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="Lease namespace (default: $POD_NAMESPACE, else default)",
    )
    election.add_argument("--identity", default=os.environ.get("POD_NAME"), help="holder identity (default: $POD_NAME)")
    election.add_argument("--lease-duration", type=float, default=15.0, help="seconds before a Lease expires (15)")
    election.add_argument("--renew-deadline", type=float, default=10.0, help="leader gives up after this (10)")
    election.add_argument("--retry-period", type=float, default=2.0, help="seconds between Lease attempts (2)")
    parser.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics here (0: off)")
    parser.add_argument("--health-port", type=int, default=0, help="serve /healthz and /readyz here (0: off)")
    parser.set_defaults(func=operator_main)
