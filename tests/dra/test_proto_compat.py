"""Our hand-written kubelet plugin protos must be wire-identical to upstream k8s.io/kubelet.

Both sides are compiled with grpcio-tools' protoc into descriptors and compared structurally
(package, services, methods, messages, fields with numbers/types/labels, enums). Upstream files are
taken from the Go module cache (``go env GOMODCACHE``); older releases import gogo.proto, so gogo
imports and options are stripped before compiling (they never change the wire format).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

KUBELET_VERSION = "v0.37.2"
OURS = Path(__file__).resolve().parents[2] / "grove" / "dra" / "proto"

# our file -> upstream path below k8s.io/kubelet@<version>/pkg/apis
PAIRS = {
    "pluginregistration_v1.proto": "pluginregistration/v1/api.proto",
    "dra_v1.proto": "dra/v1/api.proto",
    "dra_v1beta1.proto": "dra/v1beta1/api.proto",
    "dra_health_v1alpha1.proto": "dra-health/v1alpha1/api.proto",
    "dra_health_v1.proto": "dra-health/v1/api.proto",
}


def kubelet_apis_dir() -> Path:
    """Locate k8s.io/kubelet in the Go module cache, failing with a clear instruction if absent."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail("`go` not found: needed to locate the upstream kubelet protos (go env GOMODCACHE)")
    modcache = subprocess.run([go, "env", "GOMODCACHE"], capture_output=True, text=True, check=True).stdout
    apis = Path(modcache.strip()) / f"k8s.io/kubelet@{KUBELET_VERSION}" / "pkg" / "apis"
    if not apis.is_dir():
        pytest.fail(
            f"upstream protos not found at {apis}; run "
            f"`cd hack/controlplane && go mod download k8s.io/kubelet` (module k8s.io/kubelet@{KUBELET_VERSION})"
        )
    return apis


def strip_gogo(text: str) -> str:
    """Remove gogo.proto imports and options; they only affect Go code generation."""
    text = re.sub(r'^\s*import\s+"github.com/gogo/[^"]+";\s*$', "", text, flags=re.M)
    text = re.sub(r"^\s*option\s+\(gogoproto\.[^;]*;\s*$", "", text, flags=re.M)
    text = re.sub(r"\s*\[\s*\(gogoproto\.[^\]]*\]", "", text)
    return text


def compile_descriptor(src: Path, workdir: Path) -> descriptor_pb2.FileDescriptorProto:
    """Compile one .proto (after gogo stripping) and return its FileDescriptorProto."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "api.proto").write_text(strip_gogo(src.read_text()))
    out = workdir / "api.pb"
    rc = protoc.main(["protoc", f"-I{workdir}", f"--descriptor_set_out={out}", str(workdir / "api.proto")])
    assert rc == 0, f"protoc failed on {src}"
    fds = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    return fds.file[0]


def summarize(fd: descriptor_pb2.FileDescriptorProto) -> dict[str, Any]:
    """Everything that is on the wire or in gRPC paths, and nothing else."""

    def message(m: descriptor_pb2.DescriptorProto) -> dict[str, Any]:
        return {
            "fields": {
                f.name: (f.number, f.type, f.label, f.type_name, f.proto3_optional, f.json_name) for f in m.field
            },
            "nested": {n.name: message(n) for n in m.nested_type},
            "map_entry": m.options.map_entry,
            "enums": {e.name: {v.name: v.number for v in e.value} for e in m.enum_type},
        }

    return {
        "package": fd.package,
        "syntax": fd.syntax,
        "services": {
            s.name: {
                m.name: (m.input_type, m.output_type, m.client_streaming, m.server_streaming) for m in s.method
            }
            for s in fd.service
        },
        "messages": {m.name: message(m) for m in fd.message_type},
        "enums": {e.name: {v.name: v.number for v in e.value} for e in fd.enum_type},
    }


@pytest.mark.parametrize("ours,upstream", sorted(PAIRS.items()))
def test_proto_matches_upstream(ours: str, upstream: str, tmp_path: Path) -> None:
    up = kubelet_apis_dir() / upstream
    assert up.is_file(), f"missing upstream {up}"
    mine = summarize(compile_descriptor(OURS / ours, tmp_path / "ours"))
    theirs = summarize(compile_descriptor(up, tmp_path / "upstream"))
    assert mine == theirs


def test_strip_gogo_handles_old_style_files() -> None:
    """1.34-era files used gogo customname options; the stripper must leave valid proto3 behind."""
    old = (
        'syntax = "proto3";\npackage x;\nimport "github.com/gogo/protobuf/gogoproto/gogo.proto";\n'
        "option (gogoproto.goproto_stringer_all) = false;\n"
        'message Claim { string uid = 2 [(gogoproto.customname) = "UID"]; }\n'
    )
    stripped = strip_gogo(old)
    assert "gogo" not in stripped
    assert "string uid = 2;" in stripped


def test_generated_stubs_up_to_date(tmp_path: Path) -> None:
    """The checked-in *_pb2*.py files equal a fresh run of generate.sh."""
    script = OURS / "generate.sh"
    subprocess.run(["bash", str(script), str(tmp_path)], check=True)
    generated = sorted(p for p in (tmp_path / "grove" / "dra" / "proto").iterdir())
    assert generated, "generate.sh produced nothing"
    for fresh in generated:
        committed = OURS / fresh.name
        assert committed.exists(), f"{fresh.name} not checked in; run grove/dra/proto/generate.sh"
        assert committed.read_bytes() == fresh.read_bytes(), (
            f"{fresh.name} differs from a fresh generate.sh run with grpcio-tools {version('grpcio-tools')}: "
            "regenerate (grove/dra/proto/generate.sh) or install the grpcio-tools the stubs were made with"
        )


@pytest.mark.parametrize("old,new", [
    ("string pool_name = 2;", "string pool_name = 7;"),  # field number
    ("optional string share_id = 5;", "string share_id = 5;"),  # presence
    ("repeated string cdi_device_ids = 4;", "repeated string cdi_ids = 4;"),  # field name (JSON name)
    ("package k8s.io.kubelet.pkg.apis.dra.v1;", "package k8s.io.kubelet.pkg.apis.dra.v2;"),  # gRPC path
])
def test_comparison_detects_drift(old: str, new: str, tmp_path: Path) -> None:
    """The structural comparison is sensitive to each kind of wire-relevant change."""
    text = (OURS / "dra_v1.proto").read_text()
    assert old in text
    mutated = tmp_path / "mutated.proto"
    mutated.write_text(text.replace(old, new))
    theirs = summarize(compile_descriptor(kubelet_apis_dir() / "dra/v1/api.proto", tmp_path / "up"))
    assert summarize(compile_descriptor(mutated, tmp_path / "mut")) != theirs
