#!/usr/bin/env bash
# Caddy's binary from Debian's package, unpacked (not installed: the package would start its own
# caddy.service on port 80 here), for tests/unit/roles/test_reverse_proxy.py to parse the
# Caddyfile the role renders (caddy adapt). The control host's image (control-host.sh) installs
# the package itself, as a user's host does. Quick when unpacked already.
set -euo pipefail
dest="${CODESTACK_CACHE:-$HOME/.cache/codestack}/caddy"
if [ -x "$dest/usr/bin/caddy" ]; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download caddy >/dev/null 2>&1) \
  || { apt-get update -qq && (cd "$work" && apt-get download caddy >/dev/null); }
mkdir -p "$dest"
dpkg -x "$work"/caddy_*.deb "$dest"
"$dest/usr/bin/caddy" version
