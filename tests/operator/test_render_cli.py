"""`grove render`: every example renders, YAML round-trips, the tree names every object, bad specs fail."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from grove.cli import main
from grove.expansion import graph

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_yaml_matches_expansion(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(example)]) == 0
    rendered = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    doc = next(d for d in yaml.safe_load_all(example.read_text()) if d and d["kind"] == "PodCliqueSet")
    assert rendered == json.loads(json.dumps(graph.expand(doc).objects()))
    names = [(o["kind"], o["metadata"]["name"]) for o in rendered]
    assert len(names) == len(set(names))  # no duplicates
    assert any(o["kind"] == "Pod" for o in rendered)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_render_tree(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", str(example), "--tree"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PodCliqueSet ")
    assert "PodGang " in out and "Pod " in out


def test_render_invalid_spec_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "grove.io/v1alpha1",
                "kind": "PodCliqueSet",
                "metadata": {"name": "bad"},
                "spec": {
                    "replicas": 1,
                    "template": {
                        "cliqueStartupType": "CliqueStartupTypeExplicit",
                        "cliques": [
                            {"name": "a", "spec": {"replicas": 1, "startsAfter": ["b"], "podSpec": {"containers": []}}},
                            {"name": "b", "spec": {"replicas": 1, "startsAfter": ["a"], "podSpec": {"containers": []}}},
                        ],
                    },
                },
            }
        )
    )
    assert main(["render", str(bad)]) == 1
    assert "spec.template.cliques[0].spec.startsAfter" in capsys.readouterr().err
