"""``grove driver``: run the DRA node driver (one process per node)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from grove.dra.plugin import DriverOptions, DriverProcess


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "driver",
        help="run the DRA node driver (kubelet plugin) for this node",
        description="DRA kubelet plugin compatible with NVIDIA's gpu.nvidia.com driver.",
    )
    p.add_argument("--node-name", required=True, help="this node's name (pool name of its ResourceSlices)")
    p.add_argument("--driver-name", default="gpu.nvidia.com")
    p.add_argument("--plugin-registration-dir", type=Path, default=Path("/var/lib/kubelet/plugins_registry"))
    p.add_argument(
        "--plugin-data-dir",
        type=Path,
        default=None,
        help="checkpoint and dra.sock (default /var/lib/kubelet/plugins/<driver>)",
    )
    p.add_argument("--cdi-root", type=Path, default=Path("/var/run/cdi"))
    p.add_argument("--backend", choices=["nvml", "simulated"], default="nvml")
    p.add_argument(
        "--simulated-config",
        type=Path,
        default=None,
        help="YAML: GPU model, count, MIG layout per node (simulated backend)",
    )
    p.add_argument("--driver-root", type=Path, default=Path("/"),
                   help="where the NVIDIA driver's files are (the host's driver root as mounted here)")
    p.add_argument("--host-driver-root", type=Path, default=None,
                   help="the driver root on the host, for CDI mounts (default: --driver-root)")
    p.add_argument("--kubeconfig", default=None, help="default: in-cluster, then ~/.kube/config")
    p.add_argument("--no-publish", action="store_true", help="don't publish ResourceSlices (debugging)")
    p.add_argument(
        "--compute-domain-channels",
        action="store_true",
        help="also publish this node's IMEX channel for compute-domain.nvidia.com (simulated nodes)",
    )
    p.add_argument(
        "--lease-namespace",
        default="",
        help="namespace of the one-driver-per-node Lease (default: $POD_NAMESPACE, else kube-node-lease)",
    )
    p.add_argument("--lease-duration-seconds", type=int, default=30, help="duration of the node's Lease")
    p.add_argument("--resync-seconds", type=float, default=30.0, help="how often slices are re-checked")
    p.add_argument(
        "--stale-claim-cleanup-seconds",
        type=float,
        default=600.0,
        help="period of unpreparing claims whose ResourceClaim is gone (0 disables)",
    )
    p.add_argument(
        "--pod-uid", default="", help="enable rolling-update socket names <driver>-<uid>-reg.sock / dra-<uid>.sock"
    )
    p.add_argument("--metrics-port", type=int, default=0, help="serve Prometheus /metrics on this port (0: off)")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opts = DriverOptions(
        node_name=args.node_name,
        driver_name=args.driver_name,
        registration_dir=args.plugin_registration_dir,
        plugin_data_dir=args.plugin_data_dir,
        cdi_root=args.cdi_root,
        backend=args.backend,
        simulated_config=args.simulated_config,
        driver_root=args.driver_root,
        host_driver_root=args.host_driver_root,
        kubeconfig=args.kubeconfig,
        publish=not args.no_publish,
        compute_domain_channels=args.compute_domain_channels,
        resync_seconds=args.resync_seconds,
        cleanup_seconds=args.stale_claim_cleanup_seconds,
        pod_uid=args.pod_uid,
        lease_namespace=args.lease_namespace,
        lease_seconds=args.lease_duration_seconds,
        metrics_port=args.metrics_port,
    )
    return DriverProcess(opts).run()


def main(argv: list[str] | None = None) -> int:
    """Standalone entry (``python -m grove.dra.commands driver ...``) until grove/cli.py wires us in."""
    parser = argparse.ArgumentParser(prog="grove")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    rc: int = args.func(args)
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
