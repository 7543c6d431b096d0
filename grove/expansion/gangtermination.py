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

`GangTerminationInProgress` (Grove §1.4, §2.9, issue 8): before a PCS-level termination deletes the
PodCliques of a replica, every PCSG of that replica gets the condition True (`unflagged`, `flag_status`); the
PCSG reconcile sets it False once its MinAvailableBreached is False again with every member re-evaluated since
the flag (`from_before_flag`: a member whose MinAvailableBreached last changed before the flag was not
re-created yet). Written first, then acted on, so a restart in between finds the decision recorded: the
PodCliques go on the next pass. While it is True, the scaling group is no PCS-level breach candidate for
breaches that began after it was set (Grove: one termination per breach episode); a breach from before it is
the termination still to be carried out. A flag whose termination was not carried out and is no longer due
(the breach recovered in between) is set False by the PCS reconcile (`abandoned`), so it never sticks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from grove.api import constants as c
from grove.expansion import conditions
from grove.expansion.update import Clique, Replica

# grove-py: a flagged termination whose breach recovered before it was carried out (issue 8).
REASON_NO_LONGER_DUE = "GangTerminationNoLongerDue"
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


def flagged_since(pcsg: dict[str, Any] | None) -> datetime | None:
    """When the PCSG's `GangTerminationInProgress` became True (None: not True)."""
    cond = conditions.get(
        ((pcsg or {}).get("status") or {}).get("conditions"), c.CONDITION_GANG_TERMINATION_IN_PROGRESS
    )
    if not cond or cond.get("status") != "True" or not cond.get("lastTransitionTime"):
        return None
    return _time(str(cond["lastTransitionTime"]))


def from_before_flag(member: dict[str, Any] | None, flagged: datetime) -> bool:
    """Whether a member PodClique's MinAvailableBreached last changed before its PCSG's flag was set, i.e. the
    PodClique is still the one from before the termination (a re-created one has new conditions)."""
    cond = conditions.get(((member or {}).get("status") or {}).get("conditions"), c.CONDITION_MIN_AVAILABLE_BREACHED)
    try:
        return cond is not None and _time(str(cond.get("lastTransitionTime"))) < flagged
    except ValueError:
        return False


def abandoned(replica: Replica, decision: Decision) -> list[dict[str, Any]]:
    """PCSGs flagged for a termination that was not carried out and is no longer due: not due now, every
    PodClique there and none going, yet a member from before the flag. Their flag is set False again."""
    if decision.whole_replica or any(cl.obj is None or cl.terminating for cl in replica.cliques()):
        return []
    out: list[dict[str, Any]] = []
    for group in replica.groups:
        flagged = flagged_since(group.obj)
        stale = flagged is not None and any(from_before_flag(m.obj, flagged) for r in group.replicas for m in r.members)
        if stale and group.obj is not None:
            out.append(group.obj)
    return out


def unflagged(replica: Replica) -> list[dict[str, Any]]:
    """The PCSGs of a PCS replica that do not say `GangTerminationInProgress=True` yet (written before a
    PCS-level termination deletes the replica's PodCliques)."""
    return [g.obj for g in replica.groups if g.obj is not None and flagged_since(g.obj) is None]


def flag_status(pcsg: dict[str, Any], replica_index: int, now: str, on: bool = True) -> dict[str, Any]:
    """The PCSG status patch that sets `GangTerminationInProgress=True` (reason `GangTerminationActive`), or
    False again for a termination that is no longer due (`abandoned`)."""
    previous = (pcsg.get("status") or {}).get("conditions") or []
    if on:
        state, reason = ("True", c.REASON_GANG_TERMINATION_ACTIVE)
        message = f"gang termination of PodCliqueSet replica {replica_index}: its PodCliques are deleted and re-created"
    else:
        state, reason = ("False", REASON_NO_LONGER_DUE)
        message = f"gang termination of PodCliqueSet replica {replica_index} was no longer due when it was to be done"
    flag = conditions.make(
        c.CONDITION_GANG_TERMINATION_IN_PROGRESS, state, reason, message, now, pcsg["metadata"].get("generation")
    )
    return {"conditions": conditions.merge(previous, [flag])}


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
            flagged = flagged_since(group.obj)
            if flagged is not None and since > flagged:
                continue  # broke again after its PCS-level termination: not a candidate (Grove §2.9)
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
