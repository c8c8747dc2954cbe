#!/usr/bin/env bash
# Installs Chromium with apt-get when it is missing. The browser test of
# examples/webapp drives it headless; when CI is set, that test fails
# rather than skips without it.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
	exit 0
fi
echo "chromium not found: installing it with apt-get" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install chromium" >&2; exit 1; }
	sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null 2>&1 || { echo "chromium still missing after apt-get" >&2; exit 1; }
