#!/usr/bin/env bash
# Installs the Debian package PACKAGE with apt-get when the command BINARY
# is missing: ./scripts/apt-ensure.sh BINARY PACKAGE. The tests only need
# the binary; a service the package starts is not used.
set -euo pipefail
binary=${1:?usage: scripts/apt-ensure.sh BINARY PACKAGE}
package=${2:?usage: scripts/apt-ensure.sh BINARY PACKAGE}
if command -v "$binary" >/dev/null 2>&1; then
	exit 0
fi
echo "$binary not found: installing $package with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install $package" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "$package" >/dev/null
command -v "$binary" >/dev/null 2>&1 || { echo "$binary still missing after apt-get install $package" >&2; exit 1; }
