#!/usr/bin/env bash
# Builds the test control plane (issue #2): one multi-call binary with etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler and kubectl, plus
# kwok. Go's build cache makes a second run take seconds.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${GROVE_BIN_DIR:-$here/../../.cache/bin}
mkdir -p "$out"
out=$(cd "$out" && pwd)
k8s_version=$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/kubernetes)
minor=$(echo "$k8s_version" | cut -d. -f2)
export CGO_ENABLED=0
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
(cd "$here" && go build -trimpath -pgo=off -tags=selinux,notest,grpcnotrace \
  -ldflags "-s -w$stamp" -o "$out/controlplane" .)
for c in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  ln -sf controlplane "$out/$c"
done
(cd "$here/../kwok" && go build -trimpath -ldflags "-s -w" -o "$out/kwok" sigs.k8s.io/kwok/cmd/kwok)
echo "built $k8s_version into $out"
