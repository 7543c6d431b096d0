"""`grove.expansion.memo`: one computation per loaded model and key, forgotten with the model (issue #13)."""

from __future__ import annotations

import gc

from operator_fixtures import clique, make_pcs

from grove.expansion import memo, podclique
from grove.expansion import spec as specs


def test_a_value_is_computed_once_per_model_and_key_and_goes_with_its_model() -> None:
    calls: list[str] = []
    model = specs.load(make_pcs(replicas=1, cliques=[clique("a", 1)]))
    other = specs.load(make_pcs(replicas=1, cliques=[clique("a", 1)]))
    assert memo.per_model(model, "k", lambda: calls.append("model") or 1) == 1
    assert memo.per_model(model, "k", lambda: calls.append("again") or 2) == 1
    assert memo.per_model(other, "k", lambda: calls.append("other") or 3) == 3
    assert calls == ["model", "other"]
    gone = id(other)
    del other
    gc.collect()
    assert gone not in memo._VALUES and id(model) in memo._VALUES


def test_template_hash_differs_per_model_and_equals_the_uncached_one() -> None:
    from grove.expansion import hashing

    one = specs.load(make_pcs(replicas=1, cliques=[clique("a", 1)]))
    two = specs.load(
        make_pcs(replicas=1, cliques=[clique("a", 1, podSpec={"containers": [{"name": "x", "image": "y"}]})])
    )
    for model in (one, two):
        cl = model.spec.template.cliques[0]
        expected = hashing.pod_template_hash(
            cl.labels, cl.annotations, cl.spec.pod_spec, model.spec.template.priority_class_name
        )
        assert podclique.template_hash(model, cl) == podclique.template_hash(model, cl) == expected
    assert podclique.template_hash(one, one.spec.template.cliques[0]) != podclique.template_hash(
        two, two.spec.template.cliques[0]
    )
