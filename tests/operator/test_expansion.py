"""The whole object graph of Grove's worked example (§2.2): names, labels, env vars, owners, gangs, gate."""

from __future__ import annotations

from typing import Any

from operator_fixtures import clique, make_pcs

from grove.api import constants as c
from grove.expansion import graph


def by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objs}


def test_object_counts_and_names(disagg: dict[str, Any]) -> None:
    g = graph.expand(disagg)
    assert [s["metadata"]["name"] for s in g.services] == ["mn-disagg-0"]
    assert sorted(x["metadata"]["name"] for x in g.scaling_groups) == ["mn-disagg-0-decode", "mn-disagg-0-prefill"]
    assert sorted(x["metadata"]["name"] for x in g.podcliques) == sorted(
        [
            "mn-disagg-0-frontend",
            "mn-disagg-0-prefill-0-pleader",
            "mn-disagg-0-prefill-0-pworker",
            "mn-disagg-0-prefill-1-pleader",
            "mn-disagg-0-prefill-1-pworker",
            "mn-disagg-0-decode-0-dleader",
            "mn-disagg-0-decode-0-dworker",
        ]
    )
    assert [x["metadata"]["name"] for x in g.podgangs] == ["mn-disagg-0", "mn-disagg-0-prefill-0"]
    assert len(g.pods) == 2 + 2 * (1 + 3) + 1 + 2
    assert len({p["metadata"]["name"] for p in g.pods}) == len(g.pods)


def test_base_and_scaled_gangs(disagg: dict[str, Any]) -> None:
    gangs = by_name(graph.expand(disagg).podgangs)
    base = gangs["mn-disagg-0"]["spec"]["podgroups"]
    assert [(g["name"], g["minReplicas"]) for g in base] == [
        ("mn-disagg-0-frontend", 2),
        ("mn-disagg-0-prefill-0-pleader", 1),
        ("mn-disagg-0-prefill-0-pworker", 3),
        ("mn-disagg-0-decode-0-dleader", 1),
        ("mn-disagg-0-decode-0-dworker", 2),
    ]
    assert [r["name"] for r in base[0]["podReferences"]] == ["mn-disagg-0-frontend-0", "mn-disagg-0-frontend-1"]
    scaled = gangs["mn-disagg-0-prefill-0"]
    assert [g["name"] for g in scaled["spec"]["podgroups"]] == [
        "mn-disagg-0-prefill-1-pleader",
        "mn-disagg-0-prefill-1-pworker",
    ]
    assert scaled["metadata"]["labels"][c.LABEL_BASE_PODGANG] == "mn-disagg-0"
    assert gangs["mn-disagg-0"]["metadata"]["labels"][c.LABEL_SCHEDULER_NAME] == "default-scheduler"


def test_owner_references(disagg: dict[str, Any]) -> None:
    g = graph.expand(disagg)
    objs = by_name(g.objects())

    def owner(name: str) -> tuple[str, str]:
        refs = objs[name]["metadata"]["ownerReferences"]
        assert len(refs) == 1 and refs[0]["controller"] and refs[0]["blockOwnerDeletion"]
        return refs[0]["kind"], refs[0]["name"]

    assert owner("mn-disagg-0") in {("PodCliqueSet", "mn-disagg")}  # service and base gang share the name
    assert owner("mn-disagg-0-frontend") == ("PodCliqueSet", "mn-disagg")
    assert owner("mn-disagg-0-prefill") == ("PodCliqueSet", "mn-disagg")
    assert owner("mn-disagg-0-prefill-1-pworker") == ("PodCliqueScalingGroup", "mn-disagg-0-prefill")
    assert owner("mn-disagg-0-prefill-1-pworker-2") == ("PodClique", "mn-disagg-0-prefill-1-pworker")
    assert owner("mn-disagg-0-prefill-0") == ("PodCliqueSet", "mn-disagg")


def test_pod_labels_hostname_gate(disagg: dict[str, Any]) -> None:
    pods = by_name(graph.expand(disagg).pods)
    pod = pods["mn-disagg-0-prefill-1-pworker-2"]
    labels = pod["metadata"]["labels"]
    assert labels[c.LABEL_MANAGED_BY] == "grove-operator"
    assert labels[c.LABEL_PART_OF] == "mn-disagg"
    assert labels[c.LABEL_PODCLIQUE] == "mn-disagg-0-prefill-1-pworker"
    assert labels[c.LABEL_PCS_REPLICA_INDEX] == "0"
    assert labels[c.LABEL_PCSG] == "mn-disagg-0-prefill"
    assert labels[c.LABEL_PCSG_REPLICA_INDEX] == "1"
    assert labels[c.LABEL_PODGANG] == "mn-disagg-0-prefill-0"
    assert labels[c.LABEL_BASE_PODGANG] == "mn-disagg-0"
    assert labels[c.LABEL_POD_INDEX] == "2"
    assert c.LABEL_POD_TEMPLATE_HASH in labels
    assert pod["spec"]["hostname"] == "mn-disagg-0-prefill-1-pworker-2"
    assert pod["spec"]["subdomain"] == "mn-disagg-0"
    assert pod["spec"]["schedulingGates"] == [{"name": c.SCHEDULING_GATE}]


def test_env_vars_prepended(disagg: dict[str, Any]) -> None:
    pods = by_name(graph.expand(disagg).pods)
    env = pods["mn-disagg-0-prefill-0-pworker-1"]["spec"]["containers"][0]["env"]
    names = [e["name"] for e in env]
    assert names == [
        c.ENV_PCS_NAME,
        c.ENV_PCS_INDEX,
        c.ENV_PCLQ_NAME,
        c.ENV_HEADLESS_SERVICE,
        c.ENV_PCLQ_POD_INDEX,
        c.ENV_PCSG_NAME,
        c.ENV_PCSG_INDEX,
        c.ENV_PCSG_TEMPLATE_NUM_PODS,
        "USER_VAR",
    ]
    values = {e["name"]: e for e in env}
    assert values[c.ENV_HEADLESS_SERVICE]["value"] == "mn-disagg-0.ns.svc.cluster.local"
    assert values[c.ENV_PCLQ_NAME]["value"] == "mn-disagg-0-prefill-0-pworker"
    assert values[c.ENV_PCLQ_POD_INDEX]["valueFrom"]["fieldRef"]["fieldPath"] == (
        f"metadata.labels['{c.LABEL_POD_INDEX}']"
    )
    assert values[c.ENV_PCSG_TEMPLATE_NUM_PODS]["value"] == "4"
    standalone = [e["name"] for e in pods["mn-disagg-0-frontend-0"]["spec"]["containers"][0]["env"]]
    assert c.ENV_PCSG_NAME not in standalone


def test_user_env_with_grove_name_is_replaced() -> None:
    pcs = make_pcs(cliques=[clique("a", 1)])
    pcs["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["containers"][0]["env"] = [
        {"name": c.ENV_PCS_NAME, "value": "user"}
    ]
    env = graph.expand(pcs).pods[0]["spec"]["containers"][0]["env"]
    assert [e for e in env if e["name"] == c.ENV_PCS_NAME] == [{"name": c.ENV_PCS_NAME, "value": "mn"}]


def test_headless_service() -> None:
    svc = graph.expand(make_pcs(replicas=2)).services[1]
    assert svc["metadata"]["name"] == "mn-1"
    assert svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {
        c.LABEL_MANAGED_BY: "grove-operator",
        c.LABEL_PART_OF: "mn",
        c.LABEL_PCS_REPLICA_INDEX: "1",
    }


def test_other_gates_kept_and_ours_first() -> None:
    pcs = make_pcs(cliques=[clique("a", 1)])
    pcs["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["schedulingGates"] = [{"name": "kueue.x-k8s.io/admission"}]
    gates = graph.expand(pcs).pods[0]["spec"]["schedulingGates"]
    assert gates == [{"name": c.SCHEDULING_GATE}, {"name": "kueue.x-k8s.io/admission"}]


def test_template_hash_ignores_replicas() -> None:
    a = graph.expand(make_pcs(cliques=[clique("a", 1)])).podcliques[0]["metadata"]["labels"]
    b = graph.expand(make_pcs(cliques=[clique("a", 3)])).podcliques[0]["metadata"]["labels"]
    pcs = make_pcs(cliques=[clique("a", 1)])
    pcs["spec"]["template"]["cliques"][0]["spec"]["podSpec"]["containers"][0]["image"] = "other"
    d = graph.expand(pcs).podcliques[0]["metadata"]["labels"]
    assert a[c.LABEL_POD_TEMPLATE_HASH] == b[c.LABEL_POD_TEMPLATE_HASH] != d[c.LABEL_POD_TEMPLATE_HASH]


def test_tree_lists_every_object(disagg: dict[str, Any]) -> None:
    g = graph.expand(disagg)
    text = graph.tree(g)
    for obj in g.objects():
        assert obj["metadata"]["name"] in text
