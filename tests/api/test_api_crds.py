"""The generated CRDs: up to date with the generator, structural, and shaped like Grove's."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from grove.api.commands import rendered_crds
from grove.api.crdgen import build_crds, node_at
from grove.api.podspec_schema import (
    K8S_OPENAPI_DIR,
    build_claim_template_spec_schema,
    build_podspec_schema,
    load_claim_template_spec_schema,
    load_podspec_schema,
)

CRD_DIR = Path(__file__).resolve().parents[2] / "api" / "crds"
EXPECTED_FILES = {
    "grove.io_podcliquesets.yaml",
    "grove.io_podcliques.yaml",
    "grove.io_podcliquescalinggroups.yaml",
    "scheduler.grove.io_podgangs.yaml",
    "grove.io_clustertopologybindings.yaml",
    "resource.nvidia.com_computedomains.yaml",
}
CRDS = build_crds()


def schema_of(file_name: str) -> dict[str, Any]:
    schema: dict[str, Any] = CRDS[file_name]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(node: dict[str, Any], path: str = ""):  # type: ignore[no-untyped-def]
    yield path, node
    for name, prop in node.get("properties", {}).items():
        yield from walk(prop, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from walk(node["additionalProperties"], f"{path}{{}}")


def test_files_are_up_to_date() -> None:
    rendered = rendered_crds()
    assert set(rendered) == EXPECTED_FILES
    for name, text in rendered.items():
        on_disk = (CRD_DIR / name).read_text()
        assert on_disk == text, f"api/crds/{name} is stale: run `grove crds`"


def test_admission_policy_is_up_to_date() -> None:
    from grove.api.commands import POLICY_FILE, rendered_policy

    on_disk = (CRD_DIR.parents[1] / POLICY_FILE).read_text()
    assert on_disk == rendered_policy(), f"{POLICY_FILE} is stale: run `grove crds`"
    policy, binding = yaml.safe_load_all(on_disk)
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]


def test_served_scheduler_names_reach_the_rule_and_the_description() -> None:
    from grove.api.schedulers import SERVED_SCHEDULER_NAMES

    pod = node_at(
        CRDS["grove.io_podcliquesets.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        "spec.template.cliques[].spec.podSpec",
    )
    served = next(r for r in pod["x-kubernetes-validations"] if r.get("fieldPath") == ".schedulerName")
    for name in SERVED_SCHEDULER_NAMES:
        assert f"'{name}'" in served["rule"] and name in pod["properties"]["schedulerName"]["description"]


def test_rendered_yaml_round_trips() -> None:
    for name, text in rendered_crds().items():
        assert yaml.safe_load(text) == json.loads(json.dumps(CRDS[name]))


@pytest.mark.parametrize("file_name", sorted(EXPECTED_FILES))
def test_schema_is_structural(file_name: str) -> None:
    for path, node in walk(schema_of(file_name)):
        assert not {"$ref", "anyOf", "allOf", "oneOf", "title", "$defs"} & set(node), path
        if path == ".metadata":
            assert node == {"type": "object"}
            continue
        assert "type" in node or node.get("x-kubernetes-int-or-string"), f"{file_name}{path} has no type"
        assert not {k for k in node if k.startswith("x-kubernetes-patch")}, path
        if path and not path.endswith(("[]", "{}")):
            assert node.get("description"), f"{file_name}{path} has no description"


def test_names_scale_and_columns_match_grove() -> None:
    pcs = CRDS["grove.io_podcliquesets.yaml"]["spec"]
    pclq = CRDS["grove.io_podcliques.yaml"]["spec"]
    pcsg = CRDS["grove.io_podcliquescalinggroups.yaml"]["spec"]
    pg = CRDS["scheduler.grove.io_podgangs.yaml"]["spec"]
    assert [s["names"]["shortNames"] for s in (pcs, pclq, pcsg, pg)] == [["pcs"], ["pclq"], ["pcsg"], ["pg"]]
    assert all("grove" in s["names"]["categories"] for s in (pcs, pclq, pcsg, pg))
    for spec, selector in (
        (pcs, ".status.hpaPodSelector"),
        (pclq, ".status.hpaPodSelector"),
        (pcsg, ".status.selector"),
    ):
        version = spec["versions"][0]
        assert version["subresources"]["status"] == {}
        assert version["subresources"]["scale"] == {
            "specReplicasPath": ".spec.replicas",
            "statusReplicasPath": ".status.replicas",
            "labelSelectorPath": selector,
        }
    columns = {c["name"]: c["jsonPath"] for c in pcs["versions"][0]["additionalPrinterColumns"]}
    assert columns["Available"] == ".status.availableReplicas"
    assert columns["PCSGs-Total"] == ".status.updateProgress.totalPodCliqueScalingGroupsCount"
    assert "scale" not in pg["versions"][0]["subresources"]


def test_list_types_and_defaults() -> None:
    root = schema_of("grove.io_podcliquesets.yaml")
    for path in (
        "spec.template.cliques",
        "spec.template.podCliqueScalingGroups",
        "spec.template.resourceClaimTemplates",
        "spec.template.resourceSharing",
    ):
        node = node_at(root, path)
        assert node["x-kubernetes-list-type"] == "map", path
        assert node["x-kubernetes-list-map-keys"] == ["name"], path
        assert node["maxItems"] <= 64, path
    assert node_at(root, "spec.template.cliqueStartupType")["default"] == "CliqueStartupTypeAnyOrder"
    assert node_at(root, "spec.template.cliqueStartupType")["enum"] == [
        "CliqueStartupTypeAnyOrder",
        "CliqueStartupTypeInOrder",
        "CliqueStartupTypeExplicit",
    ]
    assert node_at(root, "spec.replicas") == {
        "default": 0,
        "description": node_at(root, "spec.replicas")["description"],
        "minimum": 0,
        "type": "integer",
    }
    assert node_at(root, "spec.template.podCliqueScalingGroups[].minAvailable")["default"] == 1
    assert node_at(root, "spec.updateStrategy.type")["default"] == "RollingRecreate"


def test_pod_spec_is_the_real_core_schema() -> None:
    root = schema_of("grove.io_podcliquesets.yaml")
    pod = node_at(root, "spec.template.cliques[].spec.podSpec")
    assert "x-kubernetes-preserve-unknown-fields" not in pod
    containers = pod["properties"]["containers"]
    assert containers["x-kubernetes-list-type"] == "map"
    assert {"name", "image", "resources", "env", "ports"} <= set(containers["items"]["properties"])
    ports = containers["items"]["properties"]["ports"]
    assert ports["items"]["properties"]["protocol"]["default"] == "TCP"  # list-map key with a default
    requests = containers["items"]["properties"]["resources"]["properties"]["requests"]["additionalProperties"]
    assert requests["x-kubernetes-int-or-string"] is True and "pattern" not in requests
    assert pod["properties"]["schedulerName"]["maxLength"] == 253  # bounded for the CEL budget


def test_claim_template_spec_is_the_real_resource_schema() -> None:
    root = schema_of("grove.io_podcliquesets.yaml")
    spec = node_at(root, "spec.template.resourceClaimTemplates[].templateSpec")
    assert "x-kubernetes-preserve-unknown-fields" not in spec
    request = spec["properties"]["spec"]["properties"]["devices"]["properties"]["requests"]["items"]
    assert "exactly" in request["properties"]
    assert set(spec["properties"]["metadata"]["properties"]) == {"labels", "annotations"}


@pytest.mark.skipif(not K8S_OPENAPI_DIR.exists(), reason="Kubernetes module sources not present")
def test_checked_in_podspec_schema_is_current() -> None:
    assert load_podspec_schema() == json.loads(json.dumps(build_podspec_schema()))
    assert load_claim_template_spec_schema() == json.loads(json.dumps(build_claim_template_spec_schema()))


def test_rules_are_attached_where_the_catalog_says() -> None:
    from grove.validation.celrules import RULES

    by_kind = {crd["spec"]["names"]["kind"]: crd for crd in CRDS.values()}
    for rule in RULES:
        root = by_kind[rule.kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        assert rule.to_crd() in node_at(root, rule.path)["x-kubernetes-validations"], rule.name
