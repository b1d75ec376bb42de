#!/bin/sh
# Runs a test binary inside a network namespace created for it (nld-test-<pid>) and always deletes
# the namespace afterwards. Usage: run_in_netns.sh <binary> [args...]. Needs root; exits 77 (ctest
# SKIP_RETURN_CODE) without it. The binary refuses to run outside the namespace named in
# NLD_TEST_NETNS, so host iptables rules and links are never touched.
set -u
if [ "$(id -u)" -ne 0 ]; then
  echo "SKIP: $0 needs root (network namespaces, iptables)" >&2
  exit 77
fi
for tool in ip iptables ip6tables iptables-save ip6tables-save iptables-restore ip6tables-restore timeout; do
  if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ] && [ ! -x "/sbin/$tool" ]; then
    echo "FAIL: required tool '$tool' is missing (install it via scripts/setup.sh)" >&2
    exit 1
  fi
done
PATH="$PATH:/usr/sbin:/sbin"
ns="nld-test-$$"
ip netns add "$ns" || { echo "FAIL: cannot create network namespace $ns" >&2; exit 1; }
cleanup() { ip netns del "$ns" 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns exec "$ns" ip link set lo up
NLD_TEST_NETNS="$ns" timeout -k 5 150 ip netns exec "$ns" "$@"
rc=$?
[ "$rc" -eq 124 ] && echo "FAIL: test timed out" >&2
exit "$rc"
