"""`grove sandbox up --topology`: node labels per topology domain and the matching ClusterTopologyBinding."""

from __future__ import annotations

import pytest

from grove.devcluster.nodes import parse_topology, topology_binding, topology_node_labels

RACK = "topology.grove.io/rack"
ZONE = "topology.kubernetes.io/zone"


def test_hosts_per_rack() -> None:
    labels = topology_node_labels(parse_topology("rack=2,host=4"), None)
    assert [lbl[RACK] for lbl in labels] == ["rack-0"] * 4 + ["rack-1"] * 4


def test_nodes_spread_in_blocks_over_the_narrowest_domains() -> None:
    labels = topology_node_labels(parse_topology("zone=2,rack=2"), 8)
    assert [(lbl[ZONE], lbl[RACK]) for lbl in labels][::2] == [
        ("zone-0", "rack-0"),
        ("zone-0", "rack-1"),
        ("zone-1", "rack-2"),
        ("zone-1", "rack-3"),
    ]


def test_bad_specs_name_the_part() -> None:
    with pytest.raises(ValueError, match="'rack'"):
        parse_topology("rack")
    with pytest.raises(ValueError, match="8 hosts but 3 nodes"):
        topology_node_labels(parse_topology("rack=2,host=4"), 3)


def test_binding_levels_broadest_first() -> None:
    binding = topology_binding("sandbox", parse_topology("zone=2,rack=2,host=2"))
    assert binding["spec"]["levels"] == [
        {"domain": "zone", "key": ZONE},
        {"domain": "rack", "key": RACK},
        {"domain": "host", "key": "kubernetes.io/hostname"},
    ]
