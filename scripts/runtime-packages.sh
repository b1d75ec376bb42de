#!/usr/bin/env bash
# Prints, one per line, the Debian packages that own the shared libraries BINARY loads (ldd), so
# that an image's runtime stage installs exactly what the binary links and nothing else. Runs in
# the build stage of deploy/Dockerfile (a Debian system where the binary was just linked).
# Fails on a library ldd cannot find or dpkg does not know, rather than shipping an image that
# cannot start.
#   usage: runtime-packages.sh BINARY
set -euo pipefail
binary=${1:?usage: runtime-packages.sh BINARY}

libs=$(ldd "$binary")
if grep -q 'not found' <<<"$libs"; then
  echo "runtime-packages: $binary: unresolved libraries:" >&2
  grep 'not found' <<<"$libs" >&2
  exit 1
fi

# "libfoo.so.1 => /lib/x86_64-linux-gnu/libfoo.so.1 (0x...)"; the vdso and the dynamic loader
# (no "=>" path) come with libc6.
awk '$2 == "=>" && $3 ~ /^\// { print $3 }' <<<"$libs" | while read -r lib; do
  # Bookworm's packages register /lib/... paths while usr-merged systems resolve to /usr/lib/...:
  # ask for the path as ldd printed it, then for its canonical form.
  owner=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null) || {
    echo "runtime-packages: no Debian package owns $lib (needed by $binary)" >&2
    exit 1
  }
  echo "${owner%%:*}"
done | sort -u
