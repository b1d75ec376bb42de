#!/usr/bin/env bash
# Builds the two images of deploy/Dockerfile with podman:
#   localhost/nodelocaldns/node-cache:TAG               (--target node-cache)
#   localhost/nodelocaldns/ovn-localdns-controller:TAG  (--target ovn-localdns-controller)
# TAG defaults to the project version (CMakeLists.txt); the commit goes in as NLD_REVISION.
#
# No registry needs to be reachable: unless --public-base is given, the base image (builder and
# runtime alike) is made here from Debian packages, `mmdebstrap --variant=minbase bookworm` with
# the docs/man pages/locales left out as in debian:12-slim, and `podman import`ed as
# localhost/nodelocaldns/debian-base:bookworm-<hash of the mmdebstrap arguments>. An image of
# that name already in podman's store is reused, so a second run costs only the layers that
# changed: after a source change the compile, through ccache in a build cache mount (podman keeps
# it in /var/tmp/buildah-cache/nodelocaldns-ccache), only of what changed. apt inside the build
# talks to the Debian mirror.
#
# podman runs with `--runtime runc` and lowered ulimits (crun and the default ulimits fail on this
# machine kind, see docs/operator-guide.md "Images"), with the host's network for apt.
#
#   usage: scripts/images.sh [--tag TAG] [--public-base] [--rebuild-base] [--no-cache]
#     --public-base   use the Dockerfile's defaults (debian:12, debian:12-slim) from a registry
#     --rebuild-base  make the local base image again even if one exists
#     --no-cache      no podman layer cache (the ccache mount stays; remove it for a cold build)
# Environment: NLD_IMAGE_PREFIX (default localhost/nodelocaldns), NLD_DEBIAN_MIRROR (default
# http://deb.debian.org/debian), BUILD_JOBS (compile jobs in the build stage, default ninja's).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

tag=""
public_base=0
rebuild_base=0
no_cache=()
while (($#)); do
  case $1 in
    --tag) tag=${2:?--tag needs a value}; shift 2 ;;
    --public-base) public_base=1; shift ;;
    --rebuild-base) rebuild_base=1; shift ;;
    --no-cache) no_cache=(--no-cache); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "images.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

command -v podman >/dev/null || { echo "images.sh: podman is missing (scripts/setup.sh)" >&2; exit 1; }
prefix=${NLD_IMAGE_PREFIX:-localhost/nodelocaldns}
if [[ -z $tag ]]; then
  tag=$(sed -n 's/^project(nodelocaldns VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
  [[ -n $tag ]] || { echo "images.sh: no project VERSION in CMakeLists.txt" >&2; exit 1; }
fi
revision=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)

# The machine kind's podman adjustments (crun fails on the hybrid cgroup layout; the default
# ulimits exceed what the container may set).
podman_opts=(--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)

# One build at a time per machine: two runs would otherwise both make the base image.
exec 9>/run/lock/nodelocaldns-images.lock
flock -w 1800 9 || { echo "images.sh: another images.sh holds the lock for 30 min" >&2; exit 1; }

base_args=()
if ((!public_base)); then
  command -v mmdebstrap >/dev/null ||
    { echo "images.sh: mmdebstrap is missing (scripts/setup.sh)" >&2; exit 1; }
  mirror=${NLD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
  security=${mirror%/debian}/debian-security
  mmdebstrap_args=(
    --variant=minbase
    # usr-merged by a hook, not the usrmerge package (which would pull perl into the image)
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
    # what debian:12-slim leaves out
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    bookworm -
    "deb $mirror bookworm main" "deb $mirror bookworm-updates main"
    "deb $security bookworm-security main"
  )
  hash=$(printf '%s\n' "${mmdebstrap_args[@]}" | sha256sum | cut -c1-12)
  base=$prefix/debian-base:bookworm-$hash
  if ((rebuild_base)) || ! podman image exists "$base"; then
    echo "images.sh: making base image $base (mmdebstrap ${mmdebstrap_args[*]})"
    start=$SECONDS
    log=$(mktemp)
    # mmdebstrap writes the root file system as a tar to stdout; stdin closed (it would read
    # sources from a pipe).
    if ! mmdebstrap "${mmdebstrap_args[@]}" </dev/null 2>"$log" | podman import - "$base" >/dev/null; then
      cat "$log" >&2
      rm -f "$log"
      echo "images.sh: making the base image failed" >&2
      exit 1
    fi
    rm -f "$log"
    echo "images.sh: base image made in $((SECONDS - start)) s"
  else
    echo "images.sh: reusing base image $base"
  fi
  base_args=(--build-arg "BUILDER_IMAGE=$base" --build-arg "RUNTIME_IMAGE=$base")
fi

for target in node-cache ovn-localdns-controller; do
  image=$prefix/$target:$tag
  echo "images.sh: building $image (revision $revision)"
  start=$SECONDS
  podman build "${podman_opts[@]}" --network host "${no_cache[@]}" "${base_args[@]}" \
    --build-arg "NLD_REVISION=$revision" ${BUILD_JOBS:+--build-arg "BUILD_JOBS=$BUILD_JOBS"} \
    --label "org.opencontainers.image.version=$tag" \
    --label "org.opencontainers.image.revision=$revision" \
    -f "$root/deploy/Dockerfile" --target "$target" -t "$image" "$root"
  echo "images.sh: built $image in $((SECONDS - start)) s"
  # The second target reuses the build stage just made, fresh even with --no-cache.
  no_cache=()
done

for target in node-cache ovn-localdns-controller; do
  image=$prefix/$target:$tag
  printf 'images.sh: %s %s bytes\n' "$image" "$(podman image inspect --format '{{.Size}}' "$image")"
done
