"""The operator's REST client against a local HTTP server: retries of transient answers, none of the others."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from controllers.client import ApiError, Connection, Kube


async def _serve(answers: list[int]) -> tuple[web.AppRunner, str, list[float]]:
    """A server answering each POST with the next status of `answers` (then 200); returns the request times."""
    times: list[float] = []

    async def handler(request: web.Request) -> web.Response:
        times.append(asyncio.get_running_loop().time())
        status = answers.pop(0) if answers else 200
        body = '{"kind": "Status", "reason": "TooManyRequests"}' if status != 200 else '{"metadata": {"uid": "u"}}'
        return web.Response(status=status, text=body, content_type="application/json")

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}", times


def _run(answers: list[int], attempts: int = 8) -> tuple[Any, list[float]]:
    async def main() -> tuple[Any, list[float]]:
        runner, server, times = await _serve(answers)
        kube = Kube(Connection(server, False, {}), concurrency=2)
        try:
            return await kube.request("POST", "/api/v1/namespaces/x/pods", {"a": 1}, attempts=attempts), times
        except ApiError as error:
            return error, times
        finally:
            await kube.close()
            await runner.cleanup()

    return asyncio.run(main())


def test_a_transient_answer_is_retried_after_a_pause() -> None:
    answer, times = _run([429, 503])
    assert answer == {"metadata": {"uid": "u"}}
    assert len(times) == 3
    assert times[1] - times[0] >= 0.09  # not hammered at once


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_a_final_answer_is_not_retried(status: int) -> None:
    answer, times = _run([status])
    assert isinstance(answer, ApiError) and answer.status == status
    assert len(times) == 1


def test_attempts_bound_the_retries() -> None:
    answer, times = _run([500] * 10, attempts=3)
    assert isinstance(answer, ApiError) and answer.status == 500
    assert len(times) == 3
