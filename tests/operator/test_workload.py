"""The pure side of issue #9: topology translation, the scheduling.k8s.io objects of a PodGang, the pod link."""

from __future__ import annotations

import asyncio
from typing import Any

from operator_fixtures import clique, make_pcs

from controllers import schedulingbackend
from grove.expansion import podgang, workload
from grove.expansion import spec as specs
from grove.expansion import topology as topo
from grove.expansion.pod import desired_pod
from grove.expansion.podclique import standalone_podclique

LEVELS = [("zone", "topology.kubernetes.io/zone"), ("rack", "example.com/rack"), ("host", "kubernetes.io/hostname")]


def _pcs(**template: Any) -> Any:
    raw = make_pcs(
        "tp",
        1,
        [clique("front", 2), clique("lead", 1), clique("work", 3, 2)],
        [{"name": "sg", "cliqueNames": ["lead", "work"], "replicas": 2, "minAvailable": 1}],
    )
    raw["spec"]["template"].update(template)
    return specs.load(raw)


def _gangs(model: Any, keys: topo.TopologyKeys = topo.NO_TOPOLOGY) -> list[dict[str, Any]]:
    name = model.metadata.name
    owner = {"apiVersion": "grove.io/v1alpha1", "kind": "PodCliqueSet", "metadata": {"name": name, "uid": "u"}}
    gangs = podgang.podgangs(model, owner, 0, {"sg": 2}, {}, keys)
    for gang in gangs:
        gang["metadata"]["uid"] = f"uid-{gang['metadata']['name']}"
    return gangs


def test_translate_maps_domains_to_keys_and_reports_missing_binding_and_domains() -> None:
    model = _pcs(topologyConstraint={"topologyName": "ct", "pack": {"required": "zone", "preferred": "rack"}})
    keys, errors = topo.translate(model, LEVELS)
    assert errors == []
    assert keys.pcs == topo.Pack("topology.kubernetes.io/zone", "example.com/rack")
    _, errors = topo.translate(model, None)
    assert [e.field for e in errors] == ["spec.template.topologyConstraint.topologyName"]
    assert "'ct' not found" in errors[0].message
    _, errors = topo.translate(model, [("zone", "z")])
    assert [e.field for e in errors] == ["spec.template.topologyConstraint.pack.preferred"]
    assert topo.translate(_pcs(), None) == (topo.NO_TOPOLOGY, [])


def test_scheduling_objects_mirror_the_gang() -> None:
    model = _pcs()
    base, scaled = _gangs(model)
    objs = workload.scheduling_objects(base, workload.template_names(model, 0, {"sg": 2}))
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert kinds == [
        ("Workload", "tp-0"),
        ("CompositePodGroup", "tp-0"),
        ("PodGroup", "tp-0-front"),
        ("PodGroup", "tp-0-sg-0-lead"),
        ("PodGroup", "tp-0-sg-0-work"),
    ]
    root = objs[1]["spec"]
    assert root["schedulingPolicy"] == {"gang": {"minGroupCount": 3}}
    groups = {o["metadata"]["name"]: o["spec"] for o in objs if o["kind"] == "PodGroup"}
    assert groups["tp-0-sg-0-work"]["schedulingPolicy"] == {"gang": {"minCount": 2}}
    assert all(g["parentCompositePodGroupName"] == "tp-0" for g in groups.values())
    assert groups["tp-0-front"]["workloadRef"] == {"workloadName": "tp-0", "templateName": "pclq-front"}
    assert all(o["metadata"]["ownerReferences"][0]["uid"] == "uid-tp-0" for o in objs)
    scaled_objs = workload.scheduling_objects(scaled, workload.template_names(model, 0, {"sg": 2}))
    names = [o["metadata"]["name"] for o in scaled_objs]
    assert names == ["tp-0-sg-0", "tp-0-sg-0", "tp-0-sg-1-lead", "tp-0-sg-1-work"]


def test_a_gang_of_one_podclique_is_one_podgroup_without_a_composite() -> None:
    single = specs.load(make_pcs("one", 1, [clique("worker", 2)]))
    (gang,) = _gangs(single)
    objs = workload.scheduling_objects(gang, workload.template_names(single, 0, {}))
    assert [(o["kind"], o["metadata"]["name"]) for o in objs] == [("Workload", "one-0"), ("PodGroup", "one-0-worker")]
    workload_spec, group = objs[0]["spec"], objs[1]["spec"]
    assert "compositePodGroupTemplates" not in workload_spec
    template = {"name": "pclq-worker", "schedulingPolicy": {"gang": {"minCount": 2}}}
    assert workload_spec["podGroupTemplates"] == [template]
    assert "parentCompositePodGroupName" not in group
    assert group["schedulingPolicy"] == {"gang": {"minCount": 2}}
    assert group["workloadRef"] == {"workloadName": "one-0", "templateName": "pclq-worker"}
    # A gang-level required topology needs the composite: it is the only place that constraint can live.
    zoned = make_pcs("one", 1, [clique("worker", 2)])
    zoned["spec"]["template"]["topologyConstraint"] = {"topologyName": "ct", "pack": {"required": "zone"}}
    model = specs.load(zoned)
    keys, _ = topo.translate(model, LEVELS)
    (gang,) = _gangs(model, keys)
    kinds = [o["kind"] for o in workload.scheduling_objects(gang, {})]
    assert kinds == ["Workload", "CompositePodGroup", "PodGroup"]


def test_required_topology_on_every_level() -> None:
    model = _pcs(
        topologyConstraint={"topologyName": "ct", "pack": {"required": "zone"}},
        podCliqueScalingGroups=[
            {
                "name": "sg",
                "cliqueNames": ["lead", "work"],
                "replicas": 2,
                "minAvailable": 1,
                "topologyConstraint": {"pack": {"required": "rack"}},
            }
        ],
        cliques=[
            clique("front", 2) | {"topologyConstraint": {"pack": {"required": "host"}}},
            clique("lead", 1),
            clique("work", 3, 2),
        ],
    )
    keys, errors = topo.translate(model, LEVELS)
    assert errors == []
    base, scaled = _gangs(model, keys)
    assert base["spec"]["topologyConstraintGroupConfigs"][0]["name"] == "tp-0-sg-0"
    objs = {(o["kind"], o["metadata"]["name"]): o["spec"] for o in workload.scheduling_objects(base, {})}
    key = "schedulingConstraints"
    assert objs[("CompositePodGroup", "tp-0")][key] == {"topology": [{"key": "topology.kubernetes.io/zone"}]}
    pack = objs[("CompositePodGroup", "tp-0-sg-0-pack")]
    assert pack[key] == {"topology": [{"key": "example.com/rack"}]}
    assert pack["parentCompositePodGroupName"] == "tp-0"
    assert objs[("CompositePodGroup", "tp-0")]["schedulingPolicy"]["gang"]["minGroupCount"] == 2
    assert objs[("PodGroup", "tp-0-sg-0-lead")]["parentCompositePodGroupName"] == "tp-0-sg-0-pack"
    assert objs[("PodGroup", "tp-0-front")][key] == {"topology": [{"key": "kubernetes.io/hostname"}]}
    # A scaled gang packs like its group.
    scaled_root = workload.scheduling_objects(scaled, {})[1]["spec"]
    assert scaled_root[key] == {"topology": [{"key": "example.com/rack"}]}


def test_pods_join_their_podgroup_and_carry_preferred_packing() -> None:
    model = _pcs(topologyConstraint={"topologyName": "ct", "pack": {"preferred": "rack"}})
    keys, _ = topo.translate(model, LEVELS)
    owner = {"apiVersion": "grove.io/v1alpha1", "kind": "PodCliqueSet", "metadata": {"name": "tp", "uid": "u"}}
    pclq = standalone_podclique(model, owner, 0, model.spec.template.cliques[0], None)
    pclq["metadata"]["uid"] = "pclq-uid"
    plain = desired_pod(pclq, 0)
    assert "schedulingGroup" not in plain["spec"] and "affinity" not in plain["spec"]
    pod = desired_pod(pclq, 0, gang_scheduling=True, topology=keys)
    assert pod["spec"]["schedulingGroup"] == {"podGroupName": "tp-0-front"}
    term = pod["spec"]["affinity"]["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["podAffinityTerm"] == {
        "topologyKey": "example.com/rack",
        "labelSelector": {"matchLabels": {"grove.io/podgang": "tp-0"}},
    }


class _FlakyKube:
    """Records creates; the first create of `fail` raises once, as a refused write would."""

    def __init__(self, fail: str | None = None) -> None:
        self.sent: list[str] = []
        self.fail = fail

    async def create(self, obj: dict[str, Any], **_: Any) -> None:
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        self.sent.append(key)
        if key == self.fail:
            self.fail = None
            raise RuntimeError("refused")


def test_a_gang_whose_objects_were_all_created_is_not_built_again_unless_one_failed() -> None:
    model = _pcs()
    base, _ = _gangs(model)
    templates = workload.template_names(model, 0, {"sg": 2})
    kube = _FlakyKube(fail="PodGroup/tp-0-front")
    backends = schedulingbackend.Backends(workload_api=True)

    async def passes() -> list[list[str]]:
        seen = []
        for _ in range(4):
            before = len(kube.sent)
            await asyncio.gather(
                *schedulingbackend.gang_creates(kube, backends, base, templates),  # type: ignore[arg-type]
                return_exceptions=True,
            )
            seen.append(kube.sent[before:])
        return seen

    first, retry, quiet, still_quiet = asyncio.run(passes())
    assert "PodGroup/tp-0-front" in first and len(first) == len(set(first)) > 1
    assert retry == ["PodGroup/tp-0-front"]  # only the failed one is sent again
    assert quiet == still_quiet == []
    assert base["metadata"]["uid"] in backends.settled
    backends.forget(base["metadata"]["uid"])
    assert base["metadata"]["uid"] not in backends.settled
