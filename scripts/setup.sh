#!/usr/bin/env bash
# Installs every Debian package that building, testing and benchmarking nodelocaldns needs.
# Idempotent: packages already present are skipped by apt; services that the packages would
# start (knot, unbound, dnsmasq, openvswitch, ovn) are kept from starting, because the tests
# start their own instances on private sockets and addresses.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake ninja-build pkg-config clang-14 libclang-rt-14-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libfmt-dev nlohmann-json3-dev libexpected-dev libmnl-dev libnftnl-dev libssl-dev libre2-dev
  # static checks (scripts/lint.sh: .clang-tidy, .clang-format)
  clang-tidy-14 clang-format-14
  # zone-file text of the `template` plugin's records: Knot's libzscanner (header from
  # libknot-dev; node-cache dlopen()s libzscanner.so.4 from libzscanner4)
  libknot-dev libzscanner4
  # the HTTP client of tests/observability (no binary links cpp-httplib)
  libcpp-httplib-dev
  # real DNS peers and clients for tests and benchmarks
  knot knot-dnsutils bind9-dnsutils python3 python3-dnspython python3-prometheus-client dnsperf
  dnsmasq-base unbound dnsdist knot-resolver
  # host networking
  iproute2 iptables nftables conntrack procps psmisc curl ethtool tcpdump xz-utils
  # OVN / OVS for the controller and end-to-end tests
  openvswitch-switch openvswitch-common ovn-central ovn-host ovn-common
  # images (scripts/images.sh, tests/images): podman with runc (crun fails on this machine kind's
  # hybrid cgroups), mmdebstrap for a base image made from Debian packages
  podman runc mmdebstrap
  # manifests and plots; promtool (package prometheus) checks and unit-tests deploy/monitoring's
  # alerting rules (its service is kept from starting like the others)
  gnuplot-nox python3-yaml prometheus
  # profiling, used by bench/run.sh --perf and bench/profile.sh (perf record/stat, callgrind,
  # strace -c)
  linux-perf valgrind strace
)
# `kubectl kustomize` renders the manifests. Our kustomizations need kustomize v4+ (`patches:`,
# generator `options.labels`), i.e. kubectl 1.21 or later: Debian 12's kubernetes-client is 1.20
# (kustomize v2: "json: unknown field options") and is only a fallback so the manifest tests
# report that clearly. The machine images ship a current kubectl.
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)
# npm installs the manifest test's schema validators (below); some images ship Node.js with npm.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  # Keep maintainer scripts from starting system services during installation.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    created_policy=1
  fi
  trap '[[ $created_policy == 1 ]] && rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { dpkg --configure -a && apt-get install -y -qq -f --no-install-recommends "${missing[@]}"; }
else
  echo "setup: all ${#PACKAGES[@]} packages present"
fi

# The Kubernetes API schemas the manifest test validates against (tests/deploy/package.json pins
# kubernetes-models, whose per-kind validators are generated from the API's OpenAPI schemas),
# installed from the lock file into tests/deploy/node_modules (project-local, git-ignored).
deploy_tests=$(cd "$(dirname "$0")/.." && pwd)/tests/deploy
if [[ ! -d $deploy_tests/node_modules/kubernetes-models ]] ||
   ! cmp -s "$deploy_tests/package-lock.json" "$deploy_tests/node_modules/.package-lock.json.installed"; then
  echo "setup: npm ci in tests/deploy (kubernetes-models)"
  (cd "$deploy_tests" && npm ci --no-audit --no-fund --loglevel=error --engine-strict=false >/dev/null &&
   cp package-lock.json node_modules/.package-lock.json.installed)
fi
