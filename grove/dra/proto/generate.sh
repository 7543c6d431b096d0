#!/usr/bin/env bash
# Regenerate the Python gRPC stubs for the kubelet plugin protos in this directory.
# Compiled from the repository root so the descriptors get unique file names
# (grove/dra/proto/<name>.proto) and the *_pb2_grpc.py imports are package-absolute.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"
out="${1:-$root}"
cd "$root"
"$python" -m grpc_tools.protoc -I . \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  grove/dra/proto/pluginregistration_v1.proto \
  grove/dra/proto/dra_v1.proto \
  grove/dra/proto/dra_v1beta1.proto \
  grove/dra/proto/dra_health_v1alpha1.proto \
  grove/dra/proto/dra_health_v1.proto
