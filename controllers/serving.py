"""`/healthz`, `/readyz` and `/metrics` (issue #10), served by aiohttp on the operator's own event loop.

Liveness: the event loop answers (a wedged loop fails the probe). Readiness: a follower is ready once it has
reached the API server within the lease duration (it is a healthy standby); the leader once kopf has filled
its caches. Metrics are rendered on the loop too, so the cache gauges read the kopf indexes safely.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controllers.metrics import REGISTRY


@dataclass
class Readiness:
    """What /readyz looks at; `contacted` returns the monotonic time of the last API answer (followers)."""

    leading: Callable[[], bool]
    caches_ready: Callable[[], bool]
    contacted: Callable[[], float]
    staleness: float = 15.0

    def ready(self) -> tuple[bool, str]:
        if self.leading():
            return (True, "leader, caches filled") if self.caches_ready() else (False, "leader, filling caches")
        if time.monotonic() - self.contacted() <= self.staleness:
            return True, "standby"
        return False, "standby, API server not reached"


async def _healthz(_: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _readyz(readiness: Readiness) -> Callable[[web.Request], object]:
    async def handler(_: web.Request) -> web.Response:
        ok, why = readiness.ready()
        return web.Response(status=200 if ok else 503, text=why + "\n")

    return handler


async def _metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def start(
    readiness: Readiness, *, health_port: int, metrics_port: int, host: str = "0.0.0.0"
) -> list[web.AppRunner]:
    """Start the endpoints (port 0: off; equal ports share one server). Returns the runners to clean up."""
    routes: dict[int, list[web.RouteDef]] = {}
    if health_port:
        routes.setdefault(health_port, []).extend(
            [web.get("/healthz", _healthz), web.get("/readyz", _readyz(readiness))]  # type: ignore[arg-type]
        )
    if metrics_port:
        routes.setdefault(metrics_port, []).append(web.get("/metrics", _metrics))
    runners = []
    for port, defs in routes.items():
        app = web.Application()
        app.add_routes(defs)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    return runners


async def stop(runners: list[web.AppRunner]) -> None:
    for runner in runners:
        await runner.cleanup()
