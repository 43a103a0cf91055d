#!/usr/bin/env bash
# Fresh machine, first command: install the controller requirements into a virtual environment
# and run the main job on the embedded default: the whole stack on this machine (llama.cpp on the
# CPU with SmolLM2-135M, the LiteLLM gateway with one alias per role, code-server with KiloCode
# and the Kilo CLI), nothing paid, no cloud credentials.
#
#   bash scripts/quickstart.sh                                   # plan + serve + route + IDE
#   QUICKSTART=plan bash scripts/quickstart.sh                   # only the priced plan
#   QUICKSTART=teardown bash scripts/quickstart.sh               # remove what it built (out/stack)
#   BLUEPRINT=blueprints/medium-webapp.yml QUICKSTART=plan OUT=/tmp/plan bash scripts/quickstart.sh
#   CODESTACK_STRATEGY=mitogen_linear bash scripts/quickstart.sh # a re-run through Mitogen's strategy
#
# Root or not: as root it runs as it is; as a normal user the stack's steps that need root
# (packages, /opt, /var/lib/codestack, services, the IDE's user) run through sudo (Ansible's
# become; sudo asks for your password once if it needs one). QUICKSTART=plan needs no root.
# The system Python is enough (Debian 12/13 included): the controller's requirements go into
# CODESTACK_VENV (default ~/.local/share/codestack/venv), each service gets a venv of its own.
# Without the extension gallery (offline) the IDE still comes up; one warning says how to add
# the KiloCode extension later (or give EXTRA="-e codestack_kilocode_vsix=PATH").
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BLUEPRINT="${BLUEPRINT:-$REPO/blueprints/small-cli.yml}"
MODE="${QUICKSTART:-site}"
VENV="${CODESTACK_VENV:-${XDG_DATA_HOME:-$HOME/.local/share}/codestack/venv}"
PYTHON="${PYTHON:-python3}"
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\n=== %s\n' "$*"; }

SUDO=()
if [ "$(id -u)" != 0 ]; then SUDO=(sudo); fi
need_root() {
  if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "$1 needs root: run this as root, or install sudo and allow this user to use it" >&2
    exit 1
  fi
}

say "installing the controller requirements into $VENV"
if ! "$PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian and Ubuntu keep venv's pip bootstrap in a package of its own.
  echo "$PYTHON cannot create virtual environments: installing python3-venv"
  need_root "installing python3-venv"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
if ! "$VENV/bin/python" -c 'import ansible, pydantic, yaml, litellm, ansible_mitogen' 2>/dev/null; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q -r "$REPO/requirements.txt"
else
  echo "already installed"
fi
export PATH="$VENV/bin:$PATH"

# ansible-playbook resolves llmops.codestack.* from ANSIBLE_COLLECTIONS_PATH: point it at a
# symlink tree outside the checkout (the same layout tests/run.sh uses).
digest=$(printf '%s' "$REPO" | sha1sum | cut -c1-10)
COLLS="${TMPDIR:-/tmp}/codestack-colls-$digest"
mkdir -p "$COLLS/ansible_collections/llmops"
ln -sfn "$REPO" "$COLLS/ansible_collections/llmops/codestack"
export ANSIBLE_COLLECTIONS_PATH="$COLLS${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"

# Ansible's own linear strategy by default; mitogen_linear runs the same tasks through Mitogen
# (docs/performance.md "Ansible's own time": now that the no-change re-run starts no module it is
# no faster, 8.6 s against 7.1 s). For re-runs only: Mitogen cannot run the apt module where it
# installs packages (the first build).
case "${CODESTACK_STRATEGY:-linear}" in
  linear) ;;
  mitogen_linear)
    ANSIBLE_STRATEGY_PLUGINS="$("$VENV/bin/python" -c 'import ansible_mitogen, os; print(os.path.join(os.path.dirname(ansible_mitogen.__file__), "plugins", "strategy"))')"
    export ANSIBLE_STRATEGY_PLUGINS ANSIBLE_STRATEGY="$CODESTACK_STRATEGY" ;;
  *) echo "CODESTACK_STRATEGY must be linear or mitogen_linear, not '$CODESTACK_STRATEGY'" >&2; exit 2 ;;
esac

read -r -a extra <<< "${EXTRA:-}"
if [ "$MODE" = plan ]; then
  OUT="${OUT:-$PWD/out/plan}"
  say "planning $BLUEPRINT"
  ansible-playbook "$REPO/playbooks/plan.yml" -e "blueprint=$BLUEPRINT" -e "plan_output=$OUT" ${extra[@]+"${extra[@]}"}
  say "done"
  echo "Report: $OUT/report.md (chart: $OUT/cost-vs-time.svg)"
  echo "Plan:   $OUT/plan.json"
else
  OUT="${OUT:-$PWD/out/stack}"
  become=()
  if [ ${#SUDO[@]} -gt 0 ]; then
    need_root "building or removing the stack"
    become=(--become)
    sudo -n true 2>/dev/null || become+=(--ask-become-pass)
  fi
  if [ "$MODE" = teardown ]; then
    say "removing the stack of $OUT"
    ansible-playbook "$REPO/playbooks/teardown.yml" -e "codestack_output=$OUT" \
      ${become[@]+"${become[@]}"} ${extra[@]+"${extra[@]}"}
    say "done: what was removed is listed just above (and in $OUT/teardown.json)"
    exit 0
  fi
  [ "$MODE" = site ] || { echo "QUICKSTART must be site, plan or teardown, not '$MODE'" >&2; exit 2; }
  say "building the stack of $BLUEPRINT on this machine (first run compiles llama.cpp, ~10 min)"
  ansible-playbook "$REPO/playbooks/site.yml" -e "blueprint=$BLUEPRINT" -e "codestack_output=$OUT" \
    ${become[@]+"${become[@]}"} ${extra[@]+"${extra[@]}"}
  say "done: the IDE, gateway and plan are listed just above"
fi
