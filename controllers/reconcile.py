"""Level-triggered reconciles, one module per kind (Grove's layout: a reconciler per kind with spec and status
steps): `podcliqueset`, `scalinggroup`, `podclique`. Each computes the desired objects with
`grove.expansion`, compares them with the caches and writes only the differences (`controllers.writes`), so a
crash at any point followed by a restart converges to the same objects."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from controllers import podclique, podcliqueset, scalinggroup
from controllers.client import ApiError
from controllers.queue_keys import PCLQ, PCS, PCSG
from controllers.runtime import Runtime
from controllers.workqueue import Hints, Key
from controllers.writes import start_counting

log = logging.getLogger("grove.reconcile")

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
    except ApiError as error:
        if not error.namespace_terminating:
            raise
        # Deleting a namespace races its objects' reconciles (issue 14): the namespace takes everything with
        # it, so there is nothing to retry and nothing to report.
        log.info("%s/%s/%s: namespace %s is being deleted, nothing to do", kind, ns, name, ns)
