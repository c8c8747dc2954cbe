#!/usr/bin/env bash
# Installs redis-server with apt-get when it is missing. The real-Redis
# tests start their own servers on free loopback ports; they only need the
# binary.
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
	exit 0
fi
echo "redis-server not found: installing it with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install redis-server" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq redis-server >/dev/null
# The package starts a system service on port 6379; the tests do not use it.
command -v redis-server >/dev/null 2>&1 || { echo "redis-server still missing after apt-get" >&2; exit 1; }
