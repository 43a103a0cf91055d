#!/usr/bin/env bash
# Podman for Molecule scenarios, and the systemd-capable Debian base image they start from.
# See ../shared/testing-here.md: runc instead of crun and raised ulimits are needed on these VMs.
set -euo pipefail
image=localhost/codestack-bookworm
lock=/tmp/codestack-apt.lock

if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null; then
  flock "$lock" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    podman runc debootstrap uidmap slirp4netns fuse-overlayfs >/dev/null'
fi

conf=/etc/containers/containers.conf
if ! grep -q 'codestack' "$conf" 2>/dev/null; then
  mkdir -p /etc/containers
  cat > "$conf" <<'CONF'
# written by llmops.codestack tests/setup/20-podman.sh (hybrid cgroup v1 VMs)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
CONF
fi

if podman image exists "$image"; then
  exit 0
fi

mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian
cache="${CODESTACK_CACHE:-$HOME/.cache/codestack}"
tarball="$cache/codestack-bookworm.tar"
mkdir -p "$cache"
if [ ! -s "$tarball" ]; then
  rootfs=$(mktemp -d)
  echo "debootstrap bookworm from $mirror (about a minute)"
  debootstrap --variant=minbase --include=python3,systemd,systemd-sysv,dbus,ca-certificates,procps \
    bookworm "$rootfs" "$mirror" >/dev/null
  # Same mirror inside the container as on the host, so apt works in Molecule scenarios.
  echo "deb $mirror bookworm main" > "$rootfs/etc/apt/sources.list"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb
  tar -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
fi
podman import --change 'CMD ["/sbin/init"]' "$tarball" "$image" >/dev/null 2>&1
podman image exists "$image"
