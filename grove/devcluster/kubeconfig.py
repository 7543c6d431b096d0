"""Kubeconfig writing for the local control plane.

Credentials are embedded (`*-data` fields) rather than referenced by path, so the file keeps working when it is
copied elsewhere, and every client (kubectl, the Python client, kopf, kwok) reads the same identity.
"""

from __future__ import annotations

import base64
from pathlib import Path

import yaml

CONTEXT_NAME = "grove-dev"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def build_kubeconfig(
    server: str,
    ca_cert: Path,
    client_cert: Path,
    client_key: Path,
    *,
    name: str = CONTEXT_NAME,
    user: str = "admin",
) -> dict[str, object]:
    """Return a kubeconfig document for one cluster, one user and one (current) context."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client_cert),
                    "client-key-data": _b64(client_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user, "namespace": "default"}}],
        "current-context": name,
    }


def write_kubeconfig(
    path: Path,
    server: str,
    ca_cert: Path,
    client_cert: Path,
    client_key: Path,
    *,
    name: str = CONTEXT_NAME,
) -> Path:
    """Write the kubeconfig with mode 0600 (it holds a superuser key) and return its path."""
    doc = build_kubeconfig(server, ca_cert, client_cert, client_key, name=name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(doc, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: a reader never sees a half-written file
    return path
