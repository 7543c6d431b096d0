#!/usr/bin/env bash
# Start and stop the sandbox N times in a row (default 20) and print how many `grove sandbox up` succeeded
# (issue 14: a start race once tore the sandbox down). Each run uses its own GROVE_SANDBOX_DIR under a
# temporary directory, so a sandbox you already have running is left alone.
#   hack/sandbox-repeat.sh [N] [extra `grove sandbox up` arguments...]
set -u
runs=${1:-20}
shift || true
here=$(cd "$(dirname "$0")/.." && pwd)
grove=${GROVE:-$here/.venv/bin/grove}
work=$(mktemp -d "${TMPDIR:-/tmp}/grove-repeat-XXXXXX")
export GROVE_SANDBOX_DIR=$work/sandbox
ok=0
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  if "$grove" sandbox up "$@" >"$work/up-$i.out" 2>"$work/up-$i.err"; then
    ok=$((ok + 1))
    result=ok
  else
    result="FAILED (see $work/up-$i.err)"
  fi
  "$grove" sandbox down >"$work/down-$i.out" 2>&1 || result="$result; down FAILED"
  echo "run $i/$runs: up $result in $(( $(date +%s) - start ))s"
done
echo "sandbox up succeeded $ok/$runs"
if [ "$ok" -eq "$runs" ]; then rm -rf "$work"; else echo "logs: $work"; exit 1; fi
