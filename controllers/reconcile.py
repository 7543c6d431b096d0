"""Level-triggered reconciles, one module per kind (Grove's layout: a reconciler per kind with spec and status
steps): `podcliqueset`, `scalinggroup`, `podclique`. Each computes the desired objects with
`grove.expansion`, compares them with the caches and writes only the differences (`controllers.writes`), so a
crash at any point followed by a restart converges to the same objects."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from controllers import lifecycle, podclique, podcliqueset, scalinggroup
from controllers.client import ApiError
from controllers.queue_keys import PCLQ, PCS, PCSG
from controllers.runtime import Runtime
from controllers.workqueue import Hints, Key
from controllers.writes import sent, start_counting

log = logging.getLogger("grove.reconcile")

# A reconcile that wrote skips its status step and relies on the watch events of its writes to come back. A
# write the watch never reports (a create answered AlreadyExists, a patch the server found to change nothing,
# an object not watched) would leave the status stale for good (issue 8): the key is looked at once more after
# this long anyway. A timer, not a delayed queue add, so it never holds back an earlier event.
RECHECK_AFTER_WRITES = 5.0

RECONCILERS: dict[str, Callable[[Runtime, str, str, Hints], Awaitable[None]]] = {
    PCS: podcliqueset.reconcile,
    PCSG: scalinggroup.reconcile,
    PCLQ: podclique.reconcile,
}


async def dispatch(rt: Runtime, key: Key, hints: Hints) -> None:
    start_counting()
    kind, ns, name = key
    reconciler = RECONCILERS.get(kind)
    if reconciler is None:
        return
    try:
        await reconciler(rt, ns, name, hints)
        if sent():
            lifecycle.wake_at(rt, key, RECHECK_AFTER_WRITES, hints)  # the same scope (issue #13)
    except ApiError as error:
        if not error.namespace_terminating:
            raise
        # Deleting a namespace races its objects' reconciles (issue 14): the namespace takes everything with
        # it, so there is nothing to retry and nothing to report.
        log.info("%s/%s/%s: namespace %s is being deleted, nothing to do", kind, ns, name, ns)
