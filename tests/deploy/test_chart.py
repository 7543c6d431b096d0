"""The Helm chart (issue #10) without a cluster: `helm lint`, `helm template` with the main values, CRDs and
DeviceClasses identical to the generated/deployed ones, the operator's and driver's arguments accepted by the
real `grove` parser, and the security settings the image relies on (non-root, read-only root filesystem)."""

from __future__ import annotations

from typing import Any

import yaml
from deploy_fixtures import CHART, ROOT, by_kind, helm, one, template

from grove.cli import build_parser


def test_helm_lint_is_clean() -> None:
    done = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in done.stdout, done.stdout


def test_chart_crds_are_the_generated_ones() -> None:
    """crds/ must be a copy of api/crds (`make crds` regenerates both; this test names the stale files)."""
    generated = {p.name: p.read_text() for p in (ROOT / "api" / "crds").glob("*.yaml")}
    shipped = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert sorted(shipped) == sorted(generated)
    stale = [name for name in generated if shipped[name] != generated[name]]
    assert not stale, f"deploy/helm/grove-py/crds differs from api/crds: {stale} (run `make crds`)"


def test_chart_podcliqueset_policy_is_the_generated_one() -> None:
    """The chart installs the same ValidatingAdmissionPolicy and binding as deploy/admission (`make crds`)."""
    generated = [d for d in yaml.safe_load_all((ROOT / "deploy/admission/podcliqueset-policy.yaml").read_text()) if d]
    docs = template()
    shipped = [d for d in docs if d.get("kind", "").startswith("ValidatingAdmissionPolicy")]
    shipped = [d for d in shipped if d["metadata"]["name"] in {g["metadata"]["name"] for g in generated}]
    assert shipped == generated


def test_device_classes_and_driver_rbac_match_deploy_dra() -> None:
    docs = template()
    deployed = [d for d in yaml.safe_load_all((ROOT / "deploy/dra/deviceclasses.yaml").read_text()) if d]
    assert by_kind(docs, "DeviceClass") == deployed
    rbac = [d for d in yaml.safe_load_all((ROOT / "deploy/dra/rbac.yaml").read_text()) if d]
    assert one(docs, "ClusterRole", "grove-py-dra-driver")["rules"] == by_kind(rbac, "ClusterRole")[0]["rules"]
    policy = one(docs, "ValidatingAdmissionPolicy", "grove-py-dra-driver-own-node-slices")["spec"]
    reference = by_kind(rbac, "ValidatingAdmissionPolicy")[0]["spec"]
    expected_user = "request.userInfo.username == 'system:serviceaccount:grove-system:grove-py-dra-driver'"
    assert policy["matchConditions"][0]["expression"] == expected_user
    assert {**policy, "matchConditions": []} == {**reference, "matchConditions": []}
    lease_role = one(docs, "Role", "grove-py-dra-driver-leases")
    assert lease_role["rules"] == by_kind(rbac, "Role")[0]["rules"]  # one driver per node (grove.dra.nodelease)


def _args(container: dict[str, Any], env: dict[str, str]) -> list[str]:
    """The container's command line as the kubelet expands $(VAR)."""
    argv = [*container["command"][1:], *container["args"]]
    for name, value in env.items():
        argv = [a.replace(f"$({name})", value) for a in argv]
    return argv


def test_operator_deployment_runs_what_grove_accepts() -> None:
    docs = template("operator.qps=50", "operator.burst=100", "operator.startupWaitImage=example/wait:1")
    deploy = one(docs, "Deployment", "grove-py-operator")
    assert deploy["spec"]["replicas"] == 2
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(_args(container, {"POD_NAMESPACE": "grove-system", "POD_NAME": "p"}))
    assert args.leader_elect and args.lease_namespace == "grove-system" and args.lease_name == "grove-py-operator"
    assert (args.qps, args.burst, args.startup_wait_image) == (50.0, 100, "example/wait:1")
    assert args.namespace is None  # all namespaces
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert (args.metrics_port, args.health_port) == (ports["metrics"], ports["health"])
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and not security["allowPrivilegeEscalation"]
    assert deploy["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    pdb = one(docs, "PodDisruptionBudget", "grove-py-operator")
    assert pdb["spec"]["selector"]["matchLabels"] == deploy["spec"]["selector"]["matchLabels"]


def test_driver_daemonset_runs_what_grove_accepts() -> None:
    ds = one(template(), "DaemonSet", "grove-py-dra-driver")
    container = ds["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(_args(container, {"NODE_NAME": "n1", "POD_UID": "u"}))
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"  # the Lease's
    assert str(args.driver_root) in {m["mountPath"] for m in container["volumeMounts"]}
    assert (args.node_name, args.driver_name, args.backend, args.metrics_port) == ("n1", "gpu.nvidia.com", "nvml", 8082)
    assert str(args.plugin_data_dir) == "/var/lib/kubelet/plugins/gpu.nvidia.com"
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {str(args.plugin_registration_dir), str(args.plugin_data_dir.parent), str(args.cdi_root)} <= mounts
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert ds["spec"]["template"]["spec"]["serviceAccountName"] == "grove-py-dra-driver"


def test_values_switch_parts_on_and_off() -> None:
    off = template(
        "driver.enabled=false",
        "deviceClasses.enabled=false",
        "operator.podDisruptionBudget.enabled=false",
        "admissionPolicy.enabled=false",
    )
    kinds = {d["kind"] for d in off}
    assert not kinds & {"DaemonSet", "DeviceClass", "ValidatingAdmissionPolicy", "PodDisruptionBudget"}
    assert "ServiceMonitor" not in {d["kind"] for d in template()}
    monitor = one(template("operator.serviceMonitor.enabled=true"), "ServiceMonitor", "grove-py-operator")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    single = template("operator.leaderElection.enabled=false", "operator.replicas=1")
    argv = one(single, "Deployment", "grove-py-operator")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--leader-elect" not in argv


def test_watch_namespaces_bind_the_role_per_namespace() -> None:
    docs = template("operator.watchNamespaces={team-a,team-b}")
    bindings = [b for b in by_kind(docs, "RoleBinding") if b["roleRef"]["name"] == "grove-py-operator"]
    assert sorted(b["metadata"]["namespace"] for b in bindings) == ["team-a", "team-b"]
    assert all(b["metadata"]["name"] != "grove-py-operator" for b in by_kind(docs, "ClusterRoleBinding"))
    container = one(docs, "Deployment", "grove-py-operator")["spec"]["template"]["spec"]["containers"][0]
    args = build_parser().parse_args(_args(container, {"POD_NAMESPACE": "grove-system", "POD_NAME": "p"}))
    assert args.namespace == ["team-a", "team-b"]


def test_operator_role_grants_no_secrets_and_no_node_writes() -> None:
    docs = template()
    rules = [
        r
        for role in by_kind(docs, "ClusterRole")
        if role["metadata"]["name"].startswith("grove-py-operator")
        for r in role["rules"]
    ]
    for rule in rules:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
        if "nodes" in rule["resources"]:
            assert rule["verbs"] == ["get"]


def test_containerfile_is_non_root() -> None:
    lines = [line.split() for line in (ROOT / "Containerfile").read_text().splitlines() if line.strip()]
    users = [line[1] for line in lines if line[0] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
