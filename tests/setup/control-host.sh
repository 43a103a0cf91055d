#!/usr/bin/env bash
# The remote control host of tests/integration/test_site_remote.py: the systemd base image of
# 20-podman.sh plus an SSH server, disabled and without host keys (a test that starts the
# container makes the keys, configures key-only logins on its own port and starts it), and
# Debian's caddy package with its own caddy.service disabled (the stack's reverse_proxy role
# installs it on a user's host; here it comes from the image, as the host's PyPI proxy is not
# trusted in the container). Needs 20-podman.sh first; quick when the image exists.
set -euo pipefail
# certutil on this machine: the test puts the stack's fetched CA, alone, into the NSS database of
# the Chromium profile that loads the IDE over TLS.
if ! command -v certutil >/dev/null; then
  flock /tmp/codestack-apt.lock bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq libnss3-tools >/dev/null"
fi
base=localhost/codestack-bookworm
image=localhost/codestack-bookworm-sshd
if podman image exists "$image" && podman run --rm "$image" test -x /usr/bin/caddy; then
  exit 0
fi
podman image exists "$base" || bash "$(dirname "$0")/20-podman.sh"
name=codestack-sshd-build-$$
trap 'podman rm -f "$name" >/dev/null 2>&1 || true' EXIT
podman run --name "$name" "$base" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
  apt-get install -y -qq --no-install-recommends openssh-server iproute2 caddy >/dev/null \
  && rm -f /etc/ssh/ssh_host_* && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb \
  && systemctl disable ssh caddy >/dev/null 2>&1'
podman commit --change 'CMD ["/sbin/init"]' "$name" "$image" >/dev/null
podman image exists "$image"
