"""The work queue's timing rules (issue #13): a key runs at the earliest time any add asked for."""

from __future__ import annotations

import asyncio
from typing import Any

from controllers.workqueue import WorkQueue

KEY = ("pclq", "ns", "a")


def run_queue(scenario: Any, delays: dict[str, float] | None = None) -> list[tuple[float, Any]]:
    """Run `scenario(queue, runs)` against a queue whose handler records (loop time since start, hints)."""
    runs: list[tuple[float, Any]] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def handler(key: Any, hints: Any) -> None:
            runs.append((loop.time() - start, hints))
            await asyncio.sleep(0.05)

        queue = WorkQueue(handler, workers=2, delays=delays or {})
        queue.start()
        await scenario(queue, runs)
        await queue.stop()

    asyncio.run(main())
    return runs


def test_an_add_runs_a_key_at_once_though_it_was_requeued_for_later() -> None:
    """A PodClique paced for 30 s must still react when its pods change (the old queue kept the later time)."""

    async def scenario(queue: WorkQueue, runs: list[Any]) -> None:
        queue.add(KEY, "paced", delay=30.0)
        await asyncio.sleep(0.1)
        queue.add(KEY, "pod")
        await asyncio.sleep(0.3)

    runs = run_queue(scenario)
    assert len(runs) == 1
    assert runs[0][0] < 0.3
    assert runs[0][1] == frozenset({"paced", "pod"})


def test_a_later_add_never_postpones_an_earlier_one_and_no_key_runs_twice() -> None:
    async def scenario(queue: WorkQueue, runs: list[Any]) -> None:
        queue.add(KEY, 1, delay=0.2)
        queue.add(KEY, 2, delay=5.0)
        await asyncio.sleep(0.6)

    runs = run_queue(scenario)
    assert len(runs) == 1
    assert 0.15 < runs[0][0] < 0.5
    assert runs[0][1] == frozenset({1, 2})


def test_a_key_added_while_running_runs_again_after_the_shortest_wait_asked() -> None:
    """A reconcile re-queues itself for later (paced status); a pod event during that run wins."""

    async def scenario(queue: WorkQueue, runs: list[Any]) -> None:
        queue.add(KEY)  # due after the 0.1 s debounce, then runs for 0.05 s
        await asyncio.sleep(0.12)
        assert queue.running
        queue.add(KEY, "paced", delay=10.0)
        queue.add(KEY, "pod")
        await asyncio.sleep(0.5)

    runs = run_queue(scenario, delays={"pclq": 0.1})
    assert len(runs) == 2
    assert runs[1][0] < 0.5
    assert runs[1][1] == frozenset({"paced", "pod"})


def test_a_key_requeued_for_later_while_running_waits_that_long() -> None:
    async def scenario(queue: WorkQueue, runs: list[Any]) -> None:
        queue.add(KEY)
        await asyncio.sleep(0.01)
        queue.add(KEY, "paced", delay=0.4)
        await asyncio.sleep(0.25)
        assert len(runs) == 1
        await asyncio.sleep(0.4)

    runs = run_queue(scenario)
    assert len(runs) == 2
    assert runs[1][0] > 0.35


def test_a_wake_up_runs_the_scope_of_the_passes_that_asked_for_it() -> None:
    """The 5 s recheck after a pass that wrote re-runs what that pass looked at: a PodCliqueSet pass over one
    replica (or its status only) must not come back as a full pass over every replica (issue #13). Wake-ups
    merge: any full pass asked for makes the wake-up a full pass."""
    from controllers.lifecycle import wake_at
    from controllers.runtime import Options, Runtime

    pcs_key = ("pcs", "ns", "mn")

    async def scenario(queue: WorkQueue, runs: list[Any]) -> None:
        rt = Runtime(kube=None, options=Options(), queue=queue)  # type: ignore[arg-type]
        wake_at(rt, pcs_key, 0.1, frozenset({3}))
        wake_at(rt, pcs_key, 0.05, frozenset({("status", 4)}))  # earlier: both go then
        await asyncio.sleep(0.3)
        wake_at(rt, pcs_key, 0.05, frozenset({1}))
        wake_at(rt, pcs_key, 0.1, None)
        await asyncio.sleep(0.3)

    runs = run_queue(scenario)
    assert [hints for _, hints in runs] == [{3, ("status", 4)}, None]
