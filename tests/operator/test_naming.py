"""Names follow Grove's namegen (§2.3); pods are `<pclq>-<index>` (grove-py, Grove #635)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grove.expansion import naming


def test_names_match_grove_formulas() -> None:
    assert naming.service_name("mn", 0) == "mn-0"
    assert naming.base_podgang_name("mn", 3) == "mn-3"
    assert naming.podclique_name("mn", 1, "frontend") == "mn-1-frontend"
    assert naming.scaling_group_name("mn", 1, "prefill") == "mn-1-prefill"
    assert naming.scaling_group_podclique_name("mn-1-prefill", 2, "pworker") == "mn-1-prefill-2-pworker"
    assert naming.scaled_podgang_name("mn-1-prefill", 3, 2) == "mn-1-prefill-1"
    assert naming.pod_name("mn-0-frontend", 4) == naming.hostname("mn-0-frontend", 4) == "mn-0-frontend-4"
    assert naming.subdomain("mn", 2) == "mn-2"


def test_scaled_gang_rejects_base_replicas() -> None:
    with pytest.raises(ValueError):
        naming.scaled_podgang_name("mn-0-prefill", 0, 1)


def test_gang_for_group_replica() -> None:
    assert naming.podgang_for_group_replica("mn", 0, "mn-0-sg", 0, 2) == "mn-0"
    assert naming.podgang_for_group_replica("mn", 0, "mn-0-sg", 1, 2) == "mn-0"
    assert naming.podgang_for_group_replica("mn", 0, "mn-0-sg", 2, 2) == "mn-0-sg-0"


@given(st.integers(min_value=0, max_value=10_000))
def test_trailing_index_round_trips(index: int) -> None:
    assert naming.trailing_index(naming.pod_name("a-1-b", index)) == index


def test_trailing_index_absent() -> None:
    assert naming.trailing_index("frontend") is None
