"""Gang termination (grove-api.md §2.9, issue 8): a gang whose PodCliques stay below minAvailable for longer
than `terminationDelay` is deleted and re-created.

The clock is the `lastTransitionTime` of the PodClique's `MinAvailableBreached=True` condition, so the
decision survives restarts (the operator re-queues itself for the deadline). Only breaches of PodCliques that
were available once count (`MinAvailableBreached` stays Unknown/`NotYetAvailable` before that), and the PCS
replica being updated is skipped (its PodCliques report Unknown/`UpdateInProgress` while they roll).

* A standalone PodClique breached past the delay, or a scaling group with fewer than minAvailable group
  replicas left unbreached past the delay: every PodClique of the PCS replica is deleted.
* Otherwise each group replica breached past the delay (enough others are healthy) has its member
  PodCliques deleted, the rest of the gang keeps running.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from grove.api import constants as c
from grove.expansion import conditions
from grove.expansion.update import Clique, Replica

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_duration(value: str | None, default: str = c.DEFAULT_TERMINATION_DELAY) -> float:
    """Seconds of a Go duration (`metav1.Duration`: "4h", "1m30s", "10s")."""
    text = (value or default).strip()
    parts = _PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a duration: {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def breached_since(clique: Clique) -> datetime | None:
    """When the PodClique's counted breach began (None: not breached, or never available)."""
    if clique.obj is None:
        return None
    cond = conditions.get((clique.obj.get("status") or {}).get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)
    if not cond or cond.get("status") != "True" or not cond.get("lastTransitionTime"):
        return None
    return _time(str(cond["lastTransitionTime"]))


@dataclass
class Decision:
    """What to terminate in one PCS replica now, and how long until the next deadline (None: nothing waits)."""

    whole_replica: bool = False
    group_replicas: list[tuple[str, int]] = field(default_factory=list)
    wait: float | None = None
    why: list[str] = field(default_factory=list)

    def _pending(self, remaining: float) -> None:
        self.wait = remaining if self.wait is None else min(self.wait, remaining)


def decide(replica: Replica, delay: float, now: datetime) -> Decision:
    """The gang-termination decision for one PCS replica (see the module docstring)."""
    out = Decision()
    cliques = list(replica.cliques())
    if any(cl.obj is None or cl.terminating for cl in cliques):
        return out  # expected PodCliques missing or already going (Grove skips such replicas too)
    for clique in replica.standalone:
        since = breached_since(clique)
        if since is not None and clique.obj is not None:
            remaining = delay - (now - since).total_seconds()
            if remaining <= 0:
                out.whole_replica = True
                out.why.append(f"PodClique {clique.obj['metadata']['name']} below minAvailable since {since:%H:%M:%S}")
            else:
                out._pending(remaining)
    for group in replica.groups:
        times: dict[int, datetime] = {}
        for rep in group.replicas:
            starts = [t for t in (breached_since(m) for m in rep.members) if t is not None]
            if starts:
                times[rep.index] = min(starts)
        if not times:
            continue
        healthy = len(group.replicas) - len(times)
        if healthy < group.min_available:
            # The group broke when the (replicas - minAvailable + 1)-th replica breached.
            since = sorted(times.values())[max(len(group.replicas) - group.min_available, 0)]
            remaining = delay - (now - since).total_seconds()
            if remaining <= 0:
                out.whole_replica = True
                out.why.append(f"scaling group {group.name}: {healthy} healthy replicas < minAvailable")
            else:
                out._pending(remaining)
            continue
        for index, since in sorted(times.items()):
            remaining = delay - (now - since).total_seconds()
            if remaining <= 0:
                out.group_replicas.append((group.name, index))
                out.why.append(f"scaling group {group.name} replica {index} below minAvailable")
            else:
                out._pending(remaining)
    if out.whole_replica:
        out.group_replicas = []
    return out
