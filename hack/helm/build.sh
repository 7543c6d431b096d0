#!/usr/bin/env bash
# Builds helm from its Go module (pinned in go.mod) into the bin dir, as the control plane is built, so the
# chart tests in tests/deploy run a real `helm` (issue #10).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${GROVE_BIN_DIR:-$here/../../.cache/bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)
version=$(cd "$here" && go list -m -f '{{.Version}}' helm.sh/helm/v4)
export CGO_ENABLED=0
(cd "$here" && go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
  -o "$out/helm" helm.sh/helm/v4/cmd/helm)
echo "built helm $version into $out"
