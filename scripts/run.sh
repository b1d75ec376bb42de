#!/usr/bin/env bash
# Sets up, builds and runs node-cache in the foreground on 127.0.0.1:5353 with the embedded
# default Corefile (the upstream node-local-dns layout: cluster.local, the reverse zones and ".",
# forwarding to this machine's /etc/resolv.conf). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake -S . -B build/release -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build/release -j "$(nproc)" --target node-cache
cat <<MSG
node-cache is starting on 127.0.0.1:5353 (UDP and TCP). Query it from another shell:
    dig @127.0.0.1 -p 5353 kubernetes.io
    dig @127.0.0.1 -p 5353 +tcp example.org AAAA
    curl http://127.0.0.1:8080/health; curl -s http://127.0.0.1:9253/metrics | head
MSG
exec build/release/src/cmd/node-cache/node-cache -default-config "$@"
