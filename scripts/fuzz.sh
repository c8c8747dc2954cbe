#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 30s): ./scripts/fuzz.sh 5m
# FUZZTIME is a duration or an execution count (./scripts/fuzz.sh 100000x).
# CI uses a count: with Go 1.26, a duration can end in a spurious
# "context deadline exceeded" failure with no crasher (a race in the fuzz
# coordinator, go.dev/issue/75804, fixed in Go 1.27); a count has no
# deadline to race.
# Seed corpora live in each package's testdata/fuzz and also run as plain
# tests in the normal suite; new crashers found here are written there.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
while read -r target pkg; do
	echo "fuzz $target ($pkg): $t"
	# A target that moved would otherwise fuzz nothing, successfully.
	listed=$(go test -list "^$target\$" "$pkg")
	grep -qx "$target" <<<"$listed" || { echo "no $target in $pkg" >&2; exit 1; }
	go test -run '^$' -fuzz "^$target\$" -fuzztime "$t" "$pkg"
done <<'TARGETS'
FuzzCheckKey .
FuzzMsgpackDecode ./codec
FuzzDecode ./internal/bus
FuzzUnframe ./internal/rediskv
FuzzLoadAndSaveCookie ./session
FuzzRequestCookie ./session
FuzzMsgpackString ./session
FuzzMerge ./session
FuzzParseCookie ./session/sessionid
FuzzOpen ./session/seal
TARGETS
