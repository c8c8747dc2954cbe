#!/usr/bin/env bash
# The whole test suite, as the README and CI run it: installs redis-server
# when missing, vets, and runs every test with the race detector, including
# the ones that start real redis-server processes.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/ensure-redis.sh
go vet ./...
go test -race -count=1 -timeout 10m ./... "$@"
