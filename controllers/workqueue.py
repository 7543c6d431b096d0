"""An in-memory work queue keyed by parent object (kopf has no "enqueue the owner on child change").

Semantics as client-go's workqueue: a key is never processed by two workers at once; adding a key that is
being processed makes it run once more afterwards; adds within the debounce window coalesce into one run.
Hints (for example the PCS replica indices that changed) are merged; `None` means "everything". A key runs at
the earliest time any add asked for: a reconcile that re-queued itself for later (a paced status, up to 30 s
during a deploy) still runs at once when one of its pods changes (issue #13).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

log = logging.getLogger("grove.queue")

Key = tuple[str, str, str]  # (kind, namespace, name)
Hints = frozenset[Hashable] | None
Handler = Callable[[Key, Hints], Awaitable[None]]


class WorkQueue:
    def __init__(self, handler: Handler, *, workers: int, delays: dict[str, float] | None = None) -> None:
        self.handler = handler
        self.workers = workers
        self.delays = delays or {}
        self.hints: dict[Key, set[Hashable] | None] = {}
        self.scheduled: dict[Key, float] = {}  # key -> when it is due (loop time), queued or waiting
        self.timers: dict[Key, asyncio.TimerHandle] = {}
        self.running: set[Key] = set()
        self.failures: dict[Key, int] = {}
        self.queue: asyncio.Queue[Key] = asyncio.Queue()
        self._tasks: list[asyncio.Task[Any]] = []
        self.processed = 0
        self.next_delay: dict[Key, float] = {}  # running key -> the shortest wait asked for its next run

    def add(self, key: Key, hint: Hashable | None = None, *, delay: float | None = None) -> None:
        """Enqueue `key`; `hint` narrows what changed (None: anything)."""
        if key in self.hints:
            current = self.hints[key]
            if current is not None:
                if hint is None:
                    self.hints[key] = None
                else:
                    current.add(hint)
        else:
            self.hints[key] = None if hint is None else {hint}
        wait = self.delays.get(key[0], 0.0) if delay is None else delay
        if key in self.running:
            self.next_delay[key] = min(wait, self.next_delay.get(key, wait))
            return
        self._schedule(key, wait)

    def _schedule(self, key: Key, wait: float) -> None:
        """Due in `wait` seconds unless it is due sooner already (earliest wins, never two entries)."""
        loop = asyncio.get_running_loop()
        due = loop.time() + max(wait, 0.0)
        if key in self.scheduled and self.scheduled[key] <= due:
            return
        self.scheduled[key] = due
        timer = self.timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        if wait > 0:
            self.timers[key] = loop.call_later(wait, self._due, key)
        else:
            self.queue.put_nowait(key)

    def _due(self, key: Key) -> None:
        self.timers.pop(key, None)
        self.queue.put_nowait(key)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker(), name=f"grove-worker-{i}") for i in range(self.workers)]

    async def stop(self) -> None:
        for timer in self.timers.values():
            timer.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def idle(self) -> bool:
        return not self.scheduled and not self.running and self.queue.empty()

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            self.scheduled.pop(key, None)
            hints = self.hints.pop(key, None)
            self.running.add(key)
            try:
                await self.handler(key, None if hints is None else frozenset(hints))
                self.failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception:
                count = self.failures.get(key, 0) + 1
                self.failures[key] = count
                backoff = min(0.2 * 2**count, 30.0)
                log.exception("reconcile of %s failed (attempt %d), retrying in %.1fs", "/".join(key), count, backoff)
                self.running.discard(key)
                self.next_delay.pop(key, None)
                self.add(key, None, delay=backoff)
                continue
            finally:
                self.processed += 1
            self.running.discard(key)
            wait = self.next_delay.pop(key, None)
            if key in self.hints and wait is not None:
                self._schedule(key, wait)  # added while running: run again
