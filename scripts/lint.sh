#!/usr/bin/env bash
# gofmt, go vet and staticcheck (fetched through the Go module proxy).
set -euo pipefail
cd "$(dirname "$0")/.."
unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
	echo "gofmt needed:" >&2
	echo "$unformatted" >&2
	exit 1
fi
mapfile -t mods < <(go list -m -f '{{.Dir}}/...')
go vet "${mods[@]}"
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 "${mods[@]}"
