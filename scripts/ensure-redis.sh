#!/usr/bin/env bash
# Installs redis-server with apt-get when it is missing. The real-Redis
# tests start their own servers on free loopback ports; they only need the
# binary (the package also starts a system service on port 6379, unused).
exec "$(dirname "$0")/apt-ensure.sh" redis-server redis-server
