#!/usr/bin/env bash
# The test command of llmops.codestack.
#
#   bash tests/run.sh all        # fresh machine: install everything, then every tier (CI runs this)
#   bash tests/run.sh fast       # inner loop: unit tests only, seconds
#   bash tests/run.sh TIER...    # any of: setup lint sanity units compat integration molecule slow remote pristine
#                                # (all runs integration_and_beside: pristine then remote beside integration)
#
# Tiers fail loudly: the first failing tier stops the run with a non-zero exit.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
export CODESTACK_CACHE="${CODESTACK_CACHE:-$HOME/.cache/codestack}"
export LITELLM_LOCAL_MODEL_COST_MAP=True
export ANSIBLE_FORCE_COLOR=0 PY_COLORS=0
export PIP_DISABLE_PIP_VERSION_CHECK=1
PYTEST=(python3 -m pytest -c tests/pytest.ini --rootdir "$REPO")

say() { printf '\n=== [%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# The collection must sit at .../ansible_collections/llmops/codestack for ansible-test and
# for 'ansible-playbook' to resolve llmops.codestack.* names. A copy (sanity) or a symlink
# tree outside the checkout (everything else) provides that without moving the checkout.
colls_root() {
  local digest; digest=$(printf '%s' "$REPO" | sha1sum | cut -c1-10)
  echo "${TMPDIR:-/tmp}/codestack-colls-$digest"
}
link_collection() {
  local root; root=$(colls_root)
  mkdir -p "$root/ansible_collections/llmops"
  ln -sfn "$REPO" "$root/ansible_collections/llmops/codestack"
  export ANSIBLE_COLLECTIONS_PATH="$root"
}

tier_setup() {
  say "setup: installing what the tests need"
  local script
  for script in tests/setup/[0-9]*.sh; do
    say "setup: $script"
    bash "$script"
  done
}

# Molecule installs a copy of the collection into ~/.ansible/collections; a stale copy there
# shadows this checkout for ansible-lint. Drop it (Molecule makes a fresh one per scenario).
drop_stale_copy() {
  local copy="$HOME/.ansible/collections/ansible_collections/llmops/codestack"
  if [ -e "$copy" ] && [ ! -L "$copy" ]; then rm -rf "$copy"; fi
}

tier_lint() {
  say "lint: ansible-lint (production profile)"
  drop_stale_copy
  link_collection
  ansible-lint --profile production --offline
}

# The ends of requires_ansible in meta/runtime.yml. The low end is the ansible-core that
# tests/requirements.txt pins (every tier runs on it); tier compat runs sanity and units again
# with the high end in a virtual environment of its own.
COMPAT_VERSIONS="2.19.14 2.21.5"

tier_sanity() {
  say "sanity: ansible-test sanity (no ignore files)"
  if ls tests/sanity/ignore-*.txt >/dev/null 2>&1; then
    echo "tests/sanity/ignore-*.txt must not exist: fix the findings instead" >&2; return 1
  fi
  local dest; dest="$(colls_root)-sanity/ansible_collections/llmops/codestack"
  rm -rf "$dest" && mkdir -p "$dest"
  # Only what git would ship: tracked files plus untracked, non-ignored ones.
  git ls-files -z --cached --others --exclude-standard | \
    tar --null --no-recursion -T - -cf - | tar -C "$dest" -xf -
  local excludes=()
  # The cloud fakes are test fixtures, not shipped code (they are still unit-tested).
  [ -d "$dest/tests/fakes" ] && excludes+=(--exclude tests/fakes/)
  (cd "$dest" && ansible-test sanity --venv --python "$(python3 -c 'import sys;print("%d.%d"%sys.version_info[:2])')" \
      --color no "${excludes[@]}")
}

# A Python >= 3.12 (ansible-core 2.20 and later need it on the controller).
compat_python() {
  local p root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for p in python3.13 python3.12 "$root"/versions/3.13*/bin/python3 "$root"/versions/3.12*/bin/python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys, venv; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$p"; return 0
    fi
  done
  return 1
}

tier_compat() {
  local version installed venv py
  installed=$(python3 -c 'import ansible.release as r; print(r.__version__)')
  for version in $COMPAT_VERSIONS; do
    if [ "$version" = "$installed" ]; then
      say "compat: ansible-core $version is the one every tier runs on"; continue
    fi
    venv="$CODESTACK_CACHE/venvs/ansible-core-$version"
    if [ ! -x "$venv/bin/ansible-test" ]; then
      py=$(compat_python) || { echo "compat: ansible-core $version needs Python >= 3.12" >&2; return 1; }
      say "compat: a virtual environment with ansible-core $version ($py)"
      rm -rf "$venv" && "$py" -m venv "$venv"
    fi
    # What the unit tests import, without the tools pinned to the main ansible-core (ansible,
    # ansible-lint, molecule): run every time, so a cached venv follows the requirement files.
    grep -vE '^ansible-core' requirements.txt > "$venv/requirements.txt"
    grep -E '^(pytest|hypothesis|litellm|prometheus_client|graphql-core|runpod|hcloud|kubernetes)' \
      tests/requirements.txt >> "$venv/requirements.txt"
    "$venv/bin/python" -m pip install -q "ansible-core==$version" -r "$venv/requirements.txt"
    say "compat: sanity and units with ansible-core $version"
    PATH="$venv/bin:$PATH" tier_sanity
    PATH="$venv/bin:$PATH" tier_units
  done
}

run_pytest() {
  local rc=0
  "${PYTEST[@]}" "$@" || rc=$?
  # 5 = nothing collected for this selection: not a failure of the tier.
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then return "$rc"; fi
}

tier_units() {
  say "units: pytest tests/unit"
  link_collection
  run_pytest tests/unit -q
}

tier_integration() {
  say "integration: pytest tests/integration (real Ansible, LiteLLM, fakes)"
  link_collection
  run_pytest tests/integration -q -m "not slow and not remote" --durations=25
}

tier_slow() {
  say "slow: pytest -m slow (real model servers, code-server, vLLM)"
  link_collection
  run_pytest tests/integration -q -m "slow and not remote" --durations=15
}

# The stack built onto a podman container reached over SSH (systemd, the guard outliving the
# controller, a created Hetzner/Exoscale server): about 12 min at load 4, 16 at load 8.
tier_remote() {
  say "remote: the stack on a control host over SSH (podman, systemd)"
  bash tests/setup/control-host.sh
  link_collection
  run_pytest tests/integration -q -m remote --durations=5 "$@"
}

# The README's first command on a pristine Debian container (podman), from a fresh clone of
# HEAD, with the system Python; the compiled llama.cpp wheel is mounted (no 8 min compile).
tier_pristine() {
  say "pristine: scripts/quickstart.sh in a pristine Debian 12 container"
  bash tests/pristine/quickstart.sh
}

# CI's 'all': the pristine tier and then the remote tier run in the background while the
# integration tier runs (that tier mostly waits on processes: load about 1 on 2 cores), so the
# three together take about the integration tier's time (pristine ~10 min + remote ~12 min
# against integration's ~34). The background output goes to tests/output/beside-tier.log and is
# printed when it ends; any of them failing fails this tier. The remote tier's pytest has a
# base temp of its own, apart from the integration tier's.
tier_integration_and_beside() {
  local log="$REPO/tests/output/beside-tier.log" pid rc=0 prc=0
  mkdir -p "$REPO/tests/output"
  say "integration+beside: pristine, then remote, in the background (log: $log)"
  (tier_pristine && tier_remote --basetemp="$REPO/tests/output/remote-tmp") >"$log" 2>&1 &
  pid=$!
  tier_integration || rc=$?
  say "integration+beside: integration ended (rc $rc); waiting for pristine and remote"
  wait "$pid" || prc=$?
  cat "$log"
  say "integration+beside: pristine and remote ended (rc $prc)"
  [ "$rc" -eq 0 ] || return "$rc"
  return "$prc"
}

tier_molecule() {
  say "molecule: every role's scenarios"
  link_collection
  # Scenarios mount the host's Python (with the cached llama.cpp / LiteLLM installs) read-only.
  CODESTACK_HOST_PYTHON_PREFIX="${CODESTACK_HOST_PYTHON_PREFIX:-$(python3 -c 'import sys; print(sys.prefix)')}"
  export CODESTACK_HOST_PYTHON_PREFIX
  local scenario role
  for scenario in roles/*/molecule/*/molecule.yml; do
    [ -e "$scenario" ] || continue
    role=$(echo "$scenario" | cut -d/ -f2)
    say "molecule: $role $(basename "$(dirname "$scenario")")"
    (cd "roles/$role" && molecule test -s "$(basename "$(dirname "$scenario")")")
  done
  drop_stale_copy
}

main() {
  local arg tiers=()
  [ $# -gt 0 ] || set -- fast
  for arg in "$@"; do
    case "$arg" in
      all) tiers+=(setup lint sanity units compat integration_and_beside molecule slow) ;;
      fast) tiers+=(units) ;;
      *) tiers+=("$arg") ;;
    esac
  done
  local t start=$SECONDS
  for t in "${tiers[@]}"; do
    declare -F "tier_$t" >/dev/null || { echo "unknown tier: $t" >&2; exit 2; }
    "tier_$t"
  done
  say "all requested tiers passed (${tiers[*]}) in $((SECONDS - start))s"
}

main "$@"
