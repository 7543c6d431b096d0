"""A tiny in-memory Kubernetes API server for driver tests that don't need the real control plane.

Serves exactly what the driver uses (Node GET, ResourceClaim GET, ResourceSlice list/create/replace/
delete, Lease get/create/replace/delete with resourceVersion conflicts) over HTTP, so the driver runs
its real kubernetes-client code paths, also as a subprocess.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml

SLICES = "/apis/resource.k8s.io/v1/resourceslices"


class FakeApi:
    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self.claims: dict[tuple[str, str], dict[str, Any]] = {}
        self.slices: dict[str, dict[str, Any]] = {}
        self.writes: list[tuple[str, str]] = []  # (verb, name) of slice writes
        self.leases: dict[str, dict[str, Any]] = {}  # by URL path
        self.rv = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def kubeconfig(self, path: Path) -> Path:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": "x"}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        }))
        return path

    def add_node(self, name: str) -> None:
        self.nodes[name] = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "uid": str(uuid.uuid4())}}

    def add_claim(self, namespace: str, name: str, results: list[dict[str, Any]],
                  config: list[dict[str, Any]] | None = None, allocated: bool = True) -> str:
        uid = str(uuid.uuid4())
        status: dict[str, Any] = {}
        if allocated:
            status["allocation"] = {"devices": {"results": results, "config": config or []}}
        self.claims[(namespace, name)] = {
            "apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"namespace": namespace, "name": name, "uid": uid}, "spec": {}, "status": status,
        }
        return uid

    def slices_for(self, node: str) -> list[dict[str, Any]]:
        with self.lock:
            return [s for s in self.slices.values() if s["spec"].get("nodeName") == node]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, obj: Any) -> None:
                data = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _not_found(self) -> None:
                self._send(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
                                 "code": 404})

            def _body(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length", "0"))
                return json.loads(self.rfile.read(n)) if n else {}

            def _lease(self, verb: str) -> None:
                path = urlparse(self.path).path
                with api.lock:
                    if verb == "POST":
                        obj = self._body()
                        path = f"{path}/{obj['metadata']['name']}"
                        if path in api.leases:
                            return self._send(409, {"kind": "Status", "reason": "AlreadyExists", "code": 409})
                    elif path not in api.leases:
                        return self._not_found()
                    if verb == "GET":
                        return self._send(200, api.leases[path])
                    if verb in ("PUT", "DELETE"):
                        obj = self._body()
                        want = (obj.get("metadata") or obj.get("preconditions") or {}).get("resourceVersion")
                        if want != api.leases[path]["metadata"]["resourceVersion"]:
                            return self._send(409, {"kind": "Status", "reason": "Conflict", "code": 409})
                    if verb == "DELETE":
                        return self._send(200, api.leases.pop(path))
                    api.rv += 1
                    obj["metadata"]["resourceVersion"] = str(api.rv)
                    obj.setdefault("apiVersion", "coordination.k8s.io/v1")
                    obj.setdefault("kind", "Lease")
                    api.leases[path] = obj
                return self._send(201 if verb == "POST" else 200, obj)

            def do_GET(self) -> None:
                u = urlparse(self.path)
                if "/leases" in u.path:
                    return self._lease("GET")
                parts = u.path.strip("/").split("/")
                if u.path.startswith("/api/v1/nodes/"):
                    node = api.nodes.get(parts[-1])
                    return self._send(200, node) if node else self._not_found()
                if "/resourceclaims/" in u.path:
                    claim = api.claims.get((parts[-3], parts[-1]))
                    return self._send(200, claim) if claim else self._not_found()
                if u.path == SLICES:
                    sel = dict(kv.split("=", 1) for kv in parse_qs(u.query).get("fieldSelector", [""])[0].split(",")
                               if kv)
                    with api.lock:
                        items = [s for s in api.slices.values()
                                 if all(s["spec"].get(k.split(".", 1)[1]) == v for k, v in sel.items())]
                    return self._send(200, {"kind": "ResourceSliceList", "items": items, "metadata": {}})
                self._not_found()

            def do_POST(self) -> None:
                if "/leases" in self.path:
                    return self._lease("POST")
                if urlparse(self.path).path != SLICES:
                    return self._not_found()
                obj = self._body()
                with api.lock:
                    name = obj["metadata"].pop("generateName", "slice-") + uuid.uuid4().hex[:5]
                    obj["metadata"].update(name=name, uid=str(uuid.uuid4()))
                    api.slices[name] = obj
                    api.writes.append(("create", name))
                self._send(201, obj)

            def do_PUT(self) -> None:
                if "/leases" in self.path:
                    return self._lease("PUT")
                name = urlparse(self.path).path.rsplit("/", 1)[-1]
                obj = self._body()
                with api.lock:
                    if name not in api.slices:
                        return self._not_found()
                    api.slices[name] = obj
                    api.writes.append(("replace", name))
                self._send(200, obj)

            def do_DELETE(self) -> None:
                if "/leases" in self.path:
                    return self._lease("DELETE")
                name = urlparse(self.path).path.rsplit("/", 1)[-1]
                with api.lock:
                    obj = api.slices.pop(name, None)
                    if obj is not None:
                        api.writes.append(("delete", name))
                return self._send(200, obj) if obj else self._not_found()

        return Handler
