#!/usr/bin/env bash
# Writes a file-based Go module proxy holding this repository's published
# modules (the core, the adapters and contrib) at the version the other modules
# require, built from the working tree as `go get` would download them
# once that version is tagged: ./scripts/modproxy.sh DIR
# Then run the go command with the environment `scripts/modproxy.sh env DIR`
# prints.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = env ]; then
	dir=${2:?usage: scripts/modproxy.sh env DIR}
	# A module cache of its own, under DIR: the go command assumes a
	# version's files never change, and these change with every commit
	# until the release. Other modules come from the ordinary module cache
	# first (no network for what it holds), then from the public proxy.
	echo "GOWORK=off GOFLAGS=-mod=mod GOMODCACHE=$dir/.modcache GOPROXY=file://$dir,file://$(go env GOMODCACHE)/cache/download,https://proxy.golang.org GONOSUMDB=github.com/tierstore"
	exit 0
fi
out=${1:?usage: scripts/modproxy.sh DIR}
version=$(sed -n "s|^[[:space:]]*github.com/tierstore/tierstore \(v[0-9][0-9.]*\)$|\1|p" adapters/scsstore/go.mod)
for m in adapters/gorillastore adapters/ginstore adapters/fiberstore benchmarks cmd contrib/otel contrib/prometheus examples; do
	grep -q "github.com/tierstore/tierstore $version\$" "$m/go.mod" ||
		{ echo "$m/go.mod does not require github.com/tierstore/tierstore $version" >&2; exit 1; }
done
mkdir -p "$out"
(cd tools && GOWORK=off GOFLAGS=-mod=mod go build -o "$out/.modproxy" ./modproxy)
"$out/.modproxy" -version "$version" -out "$out" . adapters/scsstore adapters/gorillastore adapters/ginstore adapters/fiberstore contrib/otel contrib/prometheus >/dev/null
echo "$version"
