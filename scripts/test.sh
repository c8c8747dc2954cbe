#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: installs redis-server,
# promtool and chromium when missing, vets, and runs every test with the
# race detector, including the ones that start real redis-server processes
# and the browser test, in every module.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-redis.sh
./scripts/ensure-promtool.sh
./scripts/ensure-chromium.sh
# The core module depends on no telemetry library: those live in contrib/.
if GOWORK=off go list -m all | grep -E 'opentelemetry|prometheus'; then
	echo "the core module's go list -m all has OpenTelemetry or Prometheus modules" >&2
	exit 1
fi
# Every module of the workspace (go.work): the core, each adapter and contrib module.
mapfile -t mods < <(go list -m -f '{{.Dir}}/...')
go vet "${mods[@]}"
go test -race -count=1 -timeout 10m "${mods[@]}" "$@"
