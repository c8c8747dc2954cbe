#!/usr/bin/env bash
# go mod tidy in every module. The modules require each other at the
# release version, which the public proxy does not have until it is
# tagged, and `go mod tidy` ignores go.work: so tidy resolves them from a
# local proxy built from the working tree (scripts/modproxy.sh), and their
# checksums, which change with every commit until the release, are not
# kept in go.sum.
set -euo pipefail
cd "$(dirname "$0")/.."
proxy=$(mktemp -d)
trap 'chmod -R u+w "$proxy"; rm -rf "$proxy"' EXIT
./scripts/modproxy.sh "$proxy" >/dev/null
env=$(./scripts/modproxy.sh env "$proxy")
for m in . adapters/scsstore adapters/gorillastore adapters/ginstore adapters/fiberstore benchmarks cmd contrib/otel contrib/prometheus examples tools; do
	# shellcheck disable=SC2086 # env is a list of VAR=value words
	(cd "$m" && env $env go mod tidy && sed -i '\#^github.com/tierstore/#d' go.sum)
done
