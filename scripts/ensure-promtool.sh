#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) with apt-get when it is
# missing: contrib/prometheus's tests run `promtool test rules` on the
# shipped alert rules.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then
	exit 0
fi
echo "promtool not found: installing the prometheus package with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install prometheus" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq prometheus >/dev/null
# The package may start a Prometheus service on port 9090; the tests do not use it.
command -v promtool >/dev/null 2>&1 || { echo "promtool still missing after apt-get" >&2; exit 1; }
