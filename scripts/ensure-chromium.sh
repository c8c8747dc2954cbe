#!/usr/bin/env bash
# Installs Chromium (Debian's chromium package, with its recommended fonts
# and Mesa) with apt-get when it is missing. The browser test of
# examples/webapp drives it headless; when CI is set, that test fails
# rather than skips without it.
exec "$(dirname "$0")/apt-ensure.sh" chromium chromium
