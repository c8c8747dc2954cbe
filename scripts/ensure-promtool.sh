#!/usr/bin/env bash
# Installs promtool (Debian's prometheus package) with apt-get when it is
# missing: contrib/prometheus's tests run `promtool test rules` on the
# shipped alert rules.
exec "$(dirname "$0")/apt-ensure.sh" promtool prometheus
