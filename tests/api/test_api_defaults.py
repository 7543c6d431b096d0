"""apply_defaults fills exactly Grove's webhook defaults."""

from grove.api import PodCliqueSet
from grove.api.defaults import apply_defaults


def pcs(**template: object) -> PodCliqueSet:
    return PodCliqueSet.model_validate(
        {
            "metadata": {"name": "x"},
            "spec": {
                "template": {
                    "cliques": [
                        {"name": "a", "spec": {"replicas": 0, "podSpec": {"containers": []}}},
                        {
                            "name": "b",
                            "spec": {
                                "replicas": 3,
                                "minAvailable": 2,
                                "autoScalingConfig": {"maxReplicas": 5},
                                "podSpec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5},
                            },
                        },
                    ],
                    "podCliqueScalingGroups": [
                        {"name": "g", "cliqueNames": ["a"], "replicas": 2, "scaleConfig": {"maxReplicas": 4}}
                    ],
                    **template,
                }
            },
        }
    )


def test_defaults_are_filled() -> None:
    original = pcs()
    out = apply_defaults(original)
    a, b = out.spec.template.cliques
    assert out.metadata.namespace == "default"
    assert (a.spec.replicas, a.spec.min_available) == (1, 1)
    assert a.spec.pod_spec["restartPolicy"] == "Always" and a.spec.pod_spec["terminationGracePeriodSeconds"] == 30
    assert (b.spec.replicas, b.spec.min_available) == (3, 2)
    assert b.spec.pod_spec["restartPolicy"] == "Never" and b.spec.pod_spec["terminationGracePeriodSeconds"] == 5
    assert b.spec.auto_scaling_config is not None and b.spec.auto_scaling_config.min_replicas == 3
    groups = out.spec.template.pod_clique_scaling_groups or []
    assert groups[0].scale_config is not None and groups[0].scale_config.min_replicas == 2
    assert out.spec.template.termination_delay == "4h"
    assert out.spec.template.headless_service_config is not None
    assert out.spec.template.headless_service_config.publish_not_ready_addresses is True
    # the input is untouched
    assert original.spec.template.cliques[0].spec.replicas == 0
    assert original.spec.template.termination_delay is None


def test_defaults_are_idempotent_and_keep_user_values() -> None:
    once = apply_defaults(pcs(terminationDelay="10m", headlessServiceConfig={"publishNotReadyAddresses": False}))
    assert once.spec.template.termination_delay == "10m"
    assert once.spec.template.headless_service_config is not None
    assert once.spec.template.headless_service_config.publish_not_ready_addresses is False
    assert apply_defaults(once).to_json() == once.to_json()
