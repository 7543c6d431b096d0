"""ComputeDomain pieces that need no cluster: model, CRD file, channel template, status, channel slice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from grove.computedomain import devices, templates
from grove.computedomain import model as m
from grove.computedomain import status as st

CRD = Path(__file__).resolve().parents[2] / "api" / "crds" / "resource.nvidia.com_computedomains.yaml"

CD: dict[str, Any] = {
    "apiVersion": "resource.nvidia.com/v1beta1",
    "kind": "ComputeDomain",
    "metadata": {"name": "cd-a", "namespace": "team", "uid": "uid-1"},
    "spec": {"numNodes": 0, "channel": {"resourceClaimTemplate": {"name": "cd-a-channel"}}},
}


# ------------------------------------------------------------------------------------------------ model + CRD


def test_model_defaults_are_nvidias() -> None:
    cd = m.ComputeDomain.model_validate({**CD, "spec": {"channel": CD["spec"]["channel"]}})
    assert cd.spec.num_nodes == 0
    assert cd.spec.channel.allocation_mode == "Single"
    status = m.ComputeDomainStatus.model_validate(
        {"status": "Ready", "nodes": [{"name": "n", "ipAddress": "10.0.0.1", "cliqueID": "c.1", "index": 0}]}
    )
    assert status.to_json()["nodes"][0] == {"name": "n", "ipAddress": "10.0.0.1", "cliqueID": "c.1", "index": 0,
                                            "status": "NotReady"}


@pytest.mark.parametrize("bad", [{"numNodes": -1}, {"channel": {"resourceClaimTemplate": {}}},
                                 {"channel": {"resourceClaimTemplate": {"name": "x"}, "allocationMode": "Some"}}])
def test_model_rejects_what_the_crd_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        m.ComputeDomainSpec.model_validate({"channel": {"resourceClaimTemplate": {"name": "x"}}, **bad})


def _walk(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of schema nodes without a type (a structural schema needs one everywhere)."""
    missing = [] if "type" in schema else [path or "/"]
    for name, sub in (schema.get("properties") or {}).items():
        missing += _walk(sub, f"{path}.{name}")
    if "items" in schema:
        missing += _walk(schema["items"], f"{path}[]")
    return missing


def test_crd_is_structural_and_matches_the_model() -> None:
    crd = yaml.safe_load(CRD.read_text())
    assert crd["metadata"]["name"] == m.CRD_NAME
    assert crd["spec"]["names"]["kind"] == m.KIND and crd["spec"]["names"]["plural"] == m.PLURAL
    assert "shortNames" not in crd["spec"]["names"]  # NVIDIA has none
    (version,) = crd["spec"]["versions"]
    assert version["name"] == m.VERSION and version["subresources"] == {"status": {}}
    schema = version["schema"]["openAPIV3Schema"]
    assert _walk(schema) == []
    spec = schema["properties"]["spec"]
    assert {"rule": "self == oldSelf", "message": "A computeDomain.spec is immutable"} in spec[
        "x-kubernetes-validations"]
    assert spec["properties"]["numNodes"]["default"] == 0
    channel = spec["properties"]["channel"]
    assert sorted(channel["properties"]["allocationMode"]["enum"]) == ["All", "Single"]
    # every field of the model's JSON is declared (nothing pruned by the API server)
    node = schema["properties"]["status"]["properties"]["nodes"]["items"]["properties"]
    assert set(node) == {f.alias for f in m.ComputeDomainNode.model_fields.values()} | {"name", "index", "status"}
    assert set(spec["properties"]) == {"numNodes", "channel"}
    assert set(channel["properties"]) == {"resourceClaimTemplate", "allocationMode"}


# ------------------------------------------------------------------------------------------------ template


def test_channel_template_is_nvidias() -> None:
    rct = templates.channel_template({**CD, "status": {"status": "Ready"}})
    assert rct["metadata"]["name"] == "cd-a-channel"
    assert rct["metadata"]["namespace"] == "team"
    assert rct["metadata"]["labels"][m.LABEL_COMPUTE_DOMAIN] == "uid-1"
    assert rct["metadata"]["labels"][m.LABEL_COMPUTE_DOMAIN_TARGET] == "Workload"
    assert rct["metadata"]["ownerReferences"][0] | {} == {
        "apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomain", "name": "cd-a", "uid": "uid-1",
        "controller": True, "blockOwnerDeletion": True}
    assert rct["spec"]["metadata"]["labels"] == {m.LABEL_COMPUTE_DOMAIN: "uid-1"}
    devices_ = rct["spec"]["spec"]["devices"]
    assert devices_["requests"] == [
        {"name": "channel", "exactly": {"deviceClassName": "compute-domain-default-channel.nvidia.com"}}]
    assert devices_["config"] == [{"requests": ["channel"], "opaque": {
        "driver": "compute-domain.nvidia.com",
        "parameters": {"apiVersion": "resource.nvidia.com/v1beta1", "kind": "ComputeDomainChannelConfig",
                       "domainID": "uid-1", "allocationMode": "Single"}}}]


def test_channel_template_all_channels() -> None:
    cd = {**CD, "spec": {"channel": {**CD["spec"]["channel"], "allocationMode": "All"}}}
    params = templates.channel_template(cd)["spec"]["spec"]["devices"]["config"][0]["opaque"]["parameters"]
    assert params["allocationMode"] == "All"


def test_claim_domain_from_label_or_config() -> None:
    rct = templates.channel_template(CD)
    generated = {"metadata": {"name": "p-channel-x", "labels": rct["spec"]["metadata"]["labels"]},
                 "spec": rct["spec"]["spec"]}
    assert templates.claim_domain(generated) == "uid-1"
    by_hand = {"metadata": {"name": "shared"}, "spec": rct["spec"]["spec"]}
    assert templates.claim_domain(by_hand) == "uid-1"
    gpu = {"metadata": {"name": "g"}, "spec": {"devices": {"requests": [{"name": "gpu"}]}}}
    assert templates.claim_domain(gpu) is None


# ------------------------------------------------------------------------------------------------ status


def allocated(node: str, by: str = "selector") -> dict[str, Any]:
    allocation: dict[str, Any] = {"devices": {"results": [
        {"request": "channel", "driver": "compute-domain.nvidia.com", "pool": node, "device": "channel-0"}]}}
    if by == "selector":
        allocation["nodeSelector"] = {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]}
    return {"status": {"allocation": allocation}}


def test_allocated_node() -> None:
    assert st.allocated_node(allocated("n1")) == "n1"
    assert st.allocated_node(allocated("n2", by="pool")) == "n2"
    assert st.allocated_node({"status": {}}) is None


def test_claim_info_reads_allocation_and_reservation() -> None:
    claim = {"metadata": {"name": "c", "namespace": "ns"}, **allocated("n1")}
    assert st.claim_info(claim) == st.ClaimInfo("ns", "c", "n1", False)
    claim["status"]["reservedFor"] = [{"resource": "pods", "name": "p", "uid": "u"}]
    assert st.claim_info(claim) == st.ClaimInfo("ns", "c", "n1", True)
    assert st.claim_info({"metadata": {"name": "c", "namespace": "ns"}}) == st.ClaimInfo("ns", "c", None, False)


def info(_: str) -> st.NodeInfo:
    return st.NodeInfo("10.0.0.1", "clique-a")


def test_joined_needs_an_allocated_claim_and_ready_a_reserved_one() -> None:
    claims = [st.ClaimInfo("ns", "c1", "n1", True), st.ClaimInfo("ns", "c2", None, True),
              st.ClaimInfo("ns", "c3", "n3", False), st.ClaimInfo("other", "c4", "n3", True),
              st.ClaimInfo("ns", "c5", "n5", False)]
    assert st.joined_nodes(claims) == {"n1": True, "n3": True, "n5": False}


@pytest.mark.parametrize(
    ("num_nodes", "joined", "expected"),
    [
        (0, {}, "NotReady"),
        (0, {"a": False}, "NotReady"),
        (0, {"a": True}, "Ready"),
        (2, {"a": True}, "NotReady"),
        (2, {"a": True, "b": False}, "NotReady"),
        (2, {"a": True, "b": True}, "Ready"),
        (1, {"a": True, "b": True}, "Ready"),
    ],
)
def test_domain_status(num_nodes: int, joined: dict[str, bool], expected: str) -> None:
    assert st.desired_status(num_nodes, [], joined, info)["status"] == expected


def test_node_entries_and_stable_indices() -> None:
    first = st.desired_status(0, [], {"b": True, "a": False}, info)
    assert first["nodes"] == [
        {"name": "a", "ipAddress": "10.0.0.1", "cliqueID": "clique-a", "index": 0, "status": "NotReady"},
        {"name": "b", "ipAddress": "10.0.0.1", "cliqueID": "clique-a", "index": 1, "status": "Ready"},
    ]
    # "a" leaves, "0a" (sorts first) joins: b keeps 1, the newcomer takes the free 0
    second = st.desired_status(0, first["nodes"], {"b": True, "0a": True}, info)
    assert [(n["name"], n["index"]) for n in second["nodes"]] == [("0a", 0), ("b", 1)]
    assert not st.status_changed(second, st.desired_status(0, second["nodes"], {"b": True, "0a": True}, info))
    assert st.status_changed(None, first)
    # a fresh domain gets status NotReady written once; after that an unchanged one is not written again
    empty = st.desired_status(0, [], {}, info)
    assert empty == {"status": "NotReady", "nodes": []}
    assert st.status_changed(None, empty) and st.status_changed({}, empty)
    assert not st.status_changed({"status": "NotReady"}, empty)
    # the result validates against the model (what the CRD accepts)
    m.ComputeDomainStatus.model_validate(second)


# ------------------------------------------------------------------------------------------------ slice


def test_channel_slice() -> None:
    sl = devices.channel_slice("node-1", "node-uid")
    assert sl["metadata"]["name"] == "node-1-compute-domain.nvidia.com"
    assert sl["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "node-1", "uid": "node-uid", "controller": True}]
    assert sl["spec"]["driver"] == "compute-domain.nvidia.com"
    assert sl["spec"]["nodeName"] == "node-1"
    assert sl["spec"]["pool"] == {"name": "node-1", "generation": 1, "resourceSliceCount": 1}
    assert sl["spec"]["devices"] == [
        {"name": "channel-0", "attributes": {"type": {"string": "channel"}, "id": {"int": 0}}},
        {"name": "daemon-0", "attributes": {"type": {"string": "daemon"}, "id": {"int": 0}}},
    ]


def test_channel_device_matches_nvidias_device_class() -> None:
    from claims_cel import matches

    channel_class = ("device.driver == 'compute-domain.nvidia.com' && "
                     "device.attributes['compute-domain.nvidia.com'].type == 'channel' && "
                     "device.attributes['compute-domain.nvidia.com'].id == 0")
    channel, daemon = devices.channel_devices()
    assert matches(channel_class, m.DRIVER, channel)
    assert not matches(channel_class, m.DRIVER, daemon)


# ------------------------------------------------------------------------------------------------ wiring


def test_controller_registers_into_any_registry() -> None:
    """The operator adds the handlers to its own registry (no second login); `kopf run -m` uses the default."""
    import kopf

    from grove.computedomain import controller

    registry = kopf.OperatorRegistry()
    controller.register(registry, with_login=False)
    assert [h.id for h in registry._indexing.get_all_handlers()] == [
        "cd_domains", "cd_templates", "cd_claims"]
    assert [h.id for h in registry._watching.get_all_handlers()] == [
        "cd_event", "cd_template_event", "cd_claim_event"]
    assert list(registry._activities.get_all_handlers()) == []
    default = kopf.get_default_registry()
    assert "cd_login" in [h.id for h in default._activities.get_all_handlers()]
    # no timers, daemons or change handlers: kopf adds no finalizers and writes no annotations
    assert not list(registry._spawning.get_all_handlers()) and not list(registry._changing.get_all_handlers())


def test_deletion_races_are_expected_answers() -> None:
    """While a namespace is deleted, 404/409 and "namespace terminating" are normal (issue 14); others are not."""
    from kubernetes.client import ApiException

    from grove.computedomain.controller import expected_during_deletion

    terminating = ApiException(status=403, reason="Forbidden")
    terminating.body = '{"details": {"causes": [{"reason": "NamespaceTerminating"}]}, "code": 403}'
    assert expected_during_deletion(terminating)
    assert expected_during_deletion(ApiException(status=404)) and expected_during_deletion(ApiException(status=409))
    rbac = ApiException(status=403, reason="Forbidden")
    rbac.body = '{"message": "cannot create resource", "code": 403}'
    assert not expected_during_deletion(rbac) and not expected_during_deletion(ApiException(status=422))
