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
  libfmt-dev nlohmann-json3-dev libmnl-dev libcpp-httplib-dev libssl-dev libre2-dev
  # real DNS peers and clients for tests and benchmarks
  knot knot-dnsutils bind9-dnsutils python3 python3-dnspython python3-prometheus-client dnsperf
  dnsmasq-base unbound dnsdist knot-resolver
  # host networking
  iproute2 iptables procps psmisc curl ethtool tcpdump xz-utils
  # OVN / OVS for the controller and end-to-end tests
  openvswitch-switch openvswitch-common ovn-central ovn-host ovn-common
  # images (scripts/images.sh, tests/images): podman with runc (crun fails on this machine kind's
  # hybrid cgroups), mmdebstrap for a base image made from Debian packages
  podman runc mmdebstrap
  # manifests and plots
  gnuplot-nox python3-yaml
)
# `kubectl kustomize` renders the manifests; any kubectl will do (some images ship one already).
command -v kubectl >/dev/null 2>&1 || PACKAGES+=(kubernetes-client)

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
