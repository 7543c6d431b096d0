"""Values derived from a loaded PodCliqueSet model, computed once per model (issue #13).

The operator loads a PodCliqueSet once per generation and passes the same model to every pass; during a deploy
a pass per changed replica recomputed its cliques' pod-template hashes each time (2.6% of the operator's CPU).
Models are never changed once loaded, so their identity is the key; an entry goes with its model."""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")

_VALUES: dict[int, dict[Hashable, Any]] = {}


def per_model(model: object, key: Hashable, compute: Callable[[], T]) -> T:
    """`compute()` the first time for this model and key, the remembered value after that."""
    values = _VALUES.get(id(model))
    if values is None:
        values = _VALUES[id(model)] = {}
        weakref.finalize(model, _VALUES.pop, id(model), None)
    if key not in values:
        values[key] = compute()
    result: T = values[key]
    return result
