#!/usr/bin/env bash
# Proves the modules install the way a user meets them: a throwaway module
# outside the repository, with no go.work, `go get`s the core and the
# adapters at the release version from a file-based proxy built from the
# working tree (scripts/modproxy.sh), compiles the README's quick start
# (examples/quickstart) and a use of each adapter (gin's and Fiber's in a
# second module), and checks that no plotting or tool module reaches the
# user's module graph. Then checks
# that building, vetting and `go doc` left this checkout clean.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
before=$(git status --porcelain)

# The README shows the quick start whole; it must be the file compiled here.
if ! diff <(sed -n '/^```go$/,/^```$/p' README.md | sed '1d;$d') examples/quickstart/main.go >/dev/null; then
	echo "outside-module: README's quick start differs from examples/quickstart/main.go" >&2
	exit 1
fi
version=$(./scripts/modproxy.sh "$work/proxy")
env=$(./scripts/modproxy.sh env "$work/proxy")
mkdir "$work/consumer"
cp examples/quickstart/main.go "$work/consumer/main.go"
cat >"$work/consumer/adapters.go" <<'GO'
package main

import (
	"github.com/tierstore/tierstore/adapters/gorillastore"
	"github.com/tierstore/tierstore/adapters/scsstore"
	"github.com/tierstore/tierstore/l1"
)

// The adapters, as a user of scs or gorilla/sessions would set them up.
func init() {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		panic(err)
	}
	_ = scsstore.New(mem)
	_ = gorillastore.New(mem)
}
GO
cd "$work/consumer"
# shellcheck disable=SC2086 # env is a list of VAR=value words
run() { env $env "$@"; }
run go mod init example.com/consumer >/dev/null 2>&1
run go get "github.com/tierstore/tierstore@$version" \
	"github.com/tierstore/tierstore/adapters/scsstore@$version" \
	"github.com/tierstore/tierstore/adapters/gorillastore@$version" 2>&1 | grep -v '^go: downloading' || true
run go mod tidy 2>&1 | grep -v '^go: downloading' || true
run go vet ./...
run go build -o /dev/null .
modules=$(run go list -m all)
echo "$modules" > "${TIERSTORE_MODLIST:-/dev/null}"
echo "outside module: $(echo "$modules" | wc -l) modules in go list -m all"
if echo "$modules" | grep -E 'gonum|plot|golang.org/x/mod|rueidis|go-fonts|opentelemetry|prometheus'; then
	echo "outside module: tool, benchmark or telemetry modules reached a user's module graph" >&2
	exit 1
fi

# The web frameworks' adapters, in a consumer of their own: gin and Fiber
# bring golang.org/x/mod into their users' graph themselves, so only the
# other tool and benchmark modules are checked for there.
mkdir "$work/frameworks"
cat >"$work/frameworks/main.go" <<'GO'
// The framework adapters, as a user of gin or Fiber would set them up.
package main

import (
	"github.com/tierstore/tierstore/adapters/fiberstore"
	"github.com/tierstore/tierstore/adapters/ginstore"
	"github.com/tierstore/tierstore/adapters/ginstore/ginsession"
	"github.com/tierstore/tierstore/l1"
	"github.com/tierstore/tierstore/session"
)

func main() {
	mem, err := l1.New(l1.Config{})
	if err != nil {
		panic(err)
	}
	sessions, err := session.New(session.Config{Store: mem})
	if err != nil {
		panic(err)
	}
	_, _, _ = ginstore.New(mem), fiberstore.New(mem), ginsession.Middleware(sessions)
}
GO
cd "$work/frameworks"
run go mod init example.com/frameworks >/dev/null 2>&1
run go get "github.com/tierstore/tierstore@$version" \
	"github.com/tierstore/tierstore/adapters/ginstore@$version" \
	"github.com/tierstore/tierstore/adapters/fiberstore@$version" 2>&1 | grep -v '^go: downloading' || true
run go mod tidy 2>&1 | grep -v '^go: downloading' || true
run go vet ./...
run go build -o /dev/null .
if run go list -m all | grep -E 'gonum|plot|rueidis|go-fonts'; then
	echo "outside module: tool or benchmark modules reached a framework user's module graph" >&2
	exit 1
fi

cd "$repo"
go doc ./l1 >/dev/null
go build ./... >/dev/null
after=$(git status --porcelain)
if [ "$before" != "$after" ]; then
	echo "outside-module: the checkout changed:" >&2
	diff <(echo "$before") <(echo "$after") >&2 || true
	exit 1
fi
echo "outside module: ok (github.com/tierstore/tierstore@$version and the adapters)"
