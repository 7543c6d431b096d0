"""Node side of ``compute-domain.nvidia.com``: IMEX channel and daemon devices for ComputeDomain claims.

NVIDIA's compute-domain kubelet plugin publishes ``channel-0`` and ``daemon-0`` per node and, when a
channel claim is prepared, injects ``/dev/nvidia-caps-imex-channels/channel<N>`` (channel 0, or all
2048 with ``allocationMode: All``), creating the character device from the major number the NVIDIA
driver registers in ``/proc/devices`` when it does not exist yet. The daemon claim gets a per-domain
directory mounted at ``/imexd`` and the domain's identity in its environment. On simulated nodes the
"device" is a real regular file under the driver's root, so the CDI edit and the file can be checked.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from grove.dra.backends.base import BackendError, ContainerEdits, DeviceHealth
from grove.dra.mps import MpsLauncher, StandinLauncher
from grove.dra.opaqueconfig import DeviceConfig

CHANNEL_DIR = "/dev/nvidia-caps-imex-channels"
MAX_CHANNELS = 2048  # NVIDIA's maxImexChannelCount
PROC_DEVICES_NAME = "nvidia-caps-imex-channels"


@dataclass(frozen=True)
class ChannelDevice:
    """``channel-<id>`` or ``daemon-<id>`` (what the Preparer needs of a device)."""

    name: str
    type: str  # "channel" | "daemon"
    id: int = 0

    uuid = ""
    compute_capability = ""


def imex_major(proc_root: Path) -> int | None:
    """The char-device major of IMEX channels from ``/proc/devices`` (None: driver lacks IMEX support)."""
    try:
        for line in (proc_root / "devices").read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1] == PROC_DEVICES_NAME and parts[0].isdigit():
                return int(parts[0])
    except OSError:
        return None
    return None


class ImexBackend:
    """Channels under ``dev_root`` (``/`` on a real node; the driver's data dir on simulated nodes)."""

    name = "imex"

    def __init__(self, dev_root: Path, data_dir: Path, simulated: bool, proc_root: Path = Path("/proc")) -> None:
        self.dev_root, self.data_dir, self.simulated, self.proc_root = dev_root, data_dir, simulated, proc_root
        self.mps_launcher: MpsLauncher = StandinLauncher()  # never used: no MPS on channels

    def discover(self) -> list[ChannelDevice]:
        return [ChannelDevice("channel-0", "channel"), ChannelDevice("daemon-0", "daemon")]

    def common_edits(self) -> ContainerEdits:
        return ContainerEdits()

    def _channel(self, n: int) -> dict[str, object]:
        path = self.dev_root / CHANNEL_DIR.lstrip("/") / f"channel{n}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            if self.simulated:
                path.write_text(f"simulated IMEX channel {n}\n")
            else:
                major = imex_major(self.proc_root)
                if major is None:
                    raise BackendError(f"{PROC_DEVICES_NAME} not in /proc/devices: driver without IMEX support")
                try:
                    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, n))
                except FileExistsError:
                    pass
                except OSError as e:
                    raise BackendError(f"creating {path}: {e}") from e
        node: dict[str, object] = {"path": f"{CHANNEL_DIR}/channel{n}"}
        if self.dev_root != Path("/"):
            node["hostPath"] = str(path)
        return node

    def prepare(self, claim_uid: str, device: ChannelDevice, config: DeviceConfig) -> ContainerEdits:
        if device.type == "channel":
            count = MAX_CHANNELS if config.allocation_mode == "All" else 1
            return ContainerEdits(device_node_specs=[self._channel(n) for n in range(count)])
        domain = self.data_dir / "domains" / config.domain_id
        domain.mkdir(parents=True, exist_ok=True)
        return ContainerEdits(
            env=[f"COMPUTE_DOMAIN_UUID={config.domain_id}"],
            mounts=[{"hostPath": str(domain), "containerPath": "/imexd", "options": ["rw", "nosuid", "nodev", "bind"]}],
        )

    def unprepare(self, claim_uid: str, device_name: str) -> None:
        """Channels are node devices shared by the domain's pods; nothing is undone per claim."""

    def reset(self, active: dict[str, str]) -> None:
        """Nothing is kept per claim."""

    def health(self) -> dict[str, DeviceHealth]:
        return {d.name: DeviceHealth(True) for d in self.discover()}
