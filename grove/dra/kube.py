"""Small helpers around the kubernetes client: credentials and raw JSON I/O.

The driver reads and writes resource.k8s.io objects as plain JSON dicts (``_preload_content=False``
and dict bodies): the generated models lag behind new API fields and would drop them silently.
"""

from __future__ import annotations

import json
from typing import Any, cast

from kubernetes import client, config


def api_client_for(kubeconfig: str | None) -> client.ApiClient:
    """Explicit kubeconfig, else in-cluster credentials (the DaemonSet case), else ~/.kube/config."""
    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
        return client.ApiClient()
    except config.ConfigException:
        return config.new_client_from_config()


def raw_json(response: Any) -> dict[str, Any]:
    """Decode a ``_preload_content=False`` response."""
    return cast(dict[str, Any], json.loads(response.data))


def get_json(api_client: client.ApiClient, path: str) -> dict[str, Any]:
    """GET an API path as JSON without importing a typed API class.

    ``CoreV1Api`` alone costs ~1 s of imports (hundreds of pydantic models); the driver needs one
    Node GET from it, and start-up time is time the node's devices are not schedulable.
    """
    method, url, headers, _, _ = api_client.param_serialize(
        "GET", path, header_params={"Accept": "application/json"}, auth_settings=["BearerToken"]
    )
    resp = api_client.call_api(method, url, header_params=headers)
    resp.read()
    if not 200 <= resp.status < 300:
        raise client.ApiException(status=resp.status, reason=resp.reason)
    return cast(dict[str, Any], json.loads(resp.data or b"{}"))


def body(obj: dict[str, Any]) -> Any:
    """Pass a plain dict where the generated client's signature names a model (it accepts both)."""
    return obj
