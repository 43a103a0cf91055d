#!/usr/bin/env bash
# The README's first command on a pristine Debian 12 machine: a podman container of the
# debootstrap base image (tests/setup/20-podman.sh: minbase + python3, systemd as PID 1, nothing
# else), a fresh clone of this repository's HEAD, the system Python, and
#
#     bash scripts/quickstart.sh
#
# as the README writes it, run as root in the clone. Then every role alias must answer through
# the gateway and the IDE must serve its login page. The container reaches PyPI, npm and the
# Debian mirror like this machine does. Mounted from the host, and nothing else:
#   - $CODESTACK_CACHE/wheels (read-only) at the role's wheel cache: the llama.cpp wheel
#     compiled once by tests/setup/10-llamacpp.sh, so the run skips the ~8 minute compile;
#   - this machine's CA bundle, which holds its egress proxy's CA (a network setting, as a
#     company proxy would be), with PIP_CERT and NODE_EXTRA_CA_CERTS pointing at it.
# KEEP=1 leaves the container running for a look inside (podman exec -it NAME bash);
# REF=<commit or branch> tries that commit instead of HEAD.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cache="${CODESTACK_CACHE:-$HOME/.cache/codestack}"
image=localhost/codestack-bookworm
name="codestack-pristine-$$"
work=$(mktemp -d)
log="$REPO/tests/output/pristine-quickstart.log"
mkdir -p "$REPO/tests/output"

cleanup() {
  if [ "${KEEP:-0}" != 1 ]; then podman rm -f "$name" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

podman image exists "$image" || { echo "no $image: run tests/setup/20-podman.sh" >&2; exit 1; }
compgen -G "$cache/wheels/llama_cpp_python-*.whl" >/dev/null \
  || { echo "no compiled llama.cpp wheel in $cache/wheels: run tests/setup/10-llamacpp.sh" >&2; exit 1; }

# A fresh clone: what is committed, nothing of this checkout's build outputs or caches.
git clone -q --no-hardlinks "$REPO" "$work/codestack"
if [ -n "${REF:-}" ]; then git -C "$work/codestack" checkout -q "$REF"; fi
ca=/etc/ssl/certs/ca-certificates.crt
podman run -d --name "$name" --stop-timeout=1 --systemd=always \
  -v "$cache/wheels:/root/.cache/codestack/wheels:ro" \
  -v "$work/codestack:/root/codestack" \
  -v "$ca:/etc/ssl/certs/codestack-host-ca.crt:ro" \
  "$image" /sbin/init >/dev/null
in_box() { podman exec -i -e PIP_CERT=/etc/ssl/certs/codestack-host-ca.crt \
  -e NODE_EXTRA_CA_CERTS=/etc/ssl/certs/codestack-host-ca.crt -w /root/codestack "$name" "$@"; }

# What "pristine" means here: the distribution's own Python, externally managed, no pip.
# shellcheck disable=SC2016  # expanded in the container
in_box sh -c 'test "$(command -v python3)" = /usr/bin/python3 && test -e /usr/lib/python3.11/EXTERNALLY-MANAGED'
if in_box python3 -m pip --version >/dev/null 2>&1; then echo "pip in the image: not pristine" >&2; exit 1; fi

start=$SECONDS
echo "pristine: bash scripts/quickstart.sh in $name (log: $log)"
if ! in_box bash scripts/quickstart.sh </dev/null >"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "pristine: the quickstart failed after $((SECONDS - start)) s" >&2
  exit 1
fi
echo "pristine: the quickstart took $((SECONDS - start)) s"

in_box python3 - <<'PY'
import glob, json, urllib.request

# The gateway's directory is per stack: /var/lib/codestack/<stack id>/litellm.
keys = glob.glob("/var/lib/codestack/*/litellm/master_key")
assert len(keys) == 1, keys
key = open(keys[0]).read().strip()
for alias in ("architect", "coder", "debugger", "reviewer", "intent"):
    body = json.dumps({"model": alias, "max_tokens": 8,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    request = urllib.request.Request("http://127.0.0.1:4000/v1/chat/completions", data=body,
                                     headers={"Authorization": "Bearer " + key,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        answer = json.load(response)
    assert answer["choices"][0]["message"]["content"] is not None, (alias, answer)
    print("pristine: %s answers through the gateway" % alias)
with urllib.request.urlopen("http://127.0.0.1:8080/login", timeout=30) as response:
    page = response.read().decode()
assert response.status == 200 and "password" in page.lower(), page[:500]
print("pristine: the IDE serves its login page")
state = json.load(open("out/stack/state.json"))
assert {r["id"] for r in state["resources"]} == {"llamacpp", "litellm", "code-server"}, state
print("pristine: state.json lists", sorted(r["id"] for r in state["resources"]))
PY
grep -q "KiloCode extension kilocode.kilo-code@7.7.7 not installed" "$log"
echo "pristine: one warning about the unreachable gallery, the run went on"

# The same script removes what it built, with the same venv (no collection but this one).
start=$SECONDS
if ! in_box env QUICKSTART=teardown bash scripts/quickstart.sh </dev/null >>"$log" 2>&1; then
  tail -n 60 "$log" >&2
  echo "pristine: the quickstart's teardown failed after $((SECONDS - start)) s" >&2
  exit 1
fi
in_box python3 - <<'PY'
import json, socket

state = json.load(open("out/stack/state.json"))
assert state["resources"] == [], state["resources"]
for port in (4000, 8001, 8080):
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "port %d still answers" % port
print("pristine: teardown removed", sorted(r["id"] for r in state.get("removed", [])))
PY
echo "pristine: the quickstart's teardown took $((SECONDS - start)) s"
