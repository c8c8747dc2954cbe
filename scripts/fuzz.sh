#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 30s): ./scripts/fuzz.sh 5m
# Seed corpora live in each package's testdata/fuzz and also run as plain
# tests in the normal suite; new crashers found here are written there.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
while read -r target pkg; do
	echo "fuzz $target ($pkg) for $t"
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg"
done <<'TARGETS'
FuzzCheckKey .
FuzzMsgpackDecode ./codec
FuzzDecode ./invalidation
FuzzUnframe ./l2
FuzzLoadAndSaveCookie ./session
TARGETS
