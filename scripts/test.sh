#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: installs redis-server
# when missing, vets, and runs every test with the race detector, including
# the ones that start real redis-server processes, in every module.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-redis.sh
# Every module of the workspace (go.work): the core and each adapter.
mapfile -t mods < <(go list -m -f '{{.Dir}}/...')
go vet "${mods[@]}"
go test -race -count=1 -timeout 10m "${mods[@]}" "$@"
