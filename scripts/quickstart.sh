#!/usr/bin/env bash
# Fresh machine, first command: install the controller requirements and run the main job on
# the embedded default: the whole stack on this machine (llama.cpp on the CPU with
# SmolLM2-135M, the LiteLLM gateway with one alias per role, code-server with KiloCode),
# nothing paid, no cloud credentials.
#
#   bash scripts/quickstart.sh                                   # plan + serve + route + IDE
#   QUICKSTART=plan bash scripts/quickstart.sh                   # only the priced plan
#   BLUEPRINT=blueprints/medium-webapp.yml QUICKSTART=plan OUT=/tmp/plan bash scripts/quickstart.sh
#
# Offline machines (no extension gallery): EXTRA="-e codestack_kilocode_extension=false"
# configures KiloCode without installing the extension (or -e codestack_kilocode_vsix=PATH).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BLUEPRINT="${BLUEPRINT:-$REPO/blueprints/small-cli.yml}"
MODE="${QUICKSTART:-site}"
export LITELLM_LOCAL_MODEL_COST_MAP=True PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\n=== %s\n' "$*"; }

say "installing the controller requirements (requirements.txt)"
if ! python3 -c 'import ansible, pydantic, yaml, litellm' 2>/dev/null; then
  python3 -m pip install -q -r "$REPO/requirements.txt"
else
  echo "already installed"
fi

# ansible-playbook resolves llmops.codestack.* from ANSIBLE_COLLECTIONS_PATH: point it at a
# symlink tree outside the checkout (the same layout tests/run.sh uses).
digest=$(printf '%s' "$REPO" | sha1sum | cut -c1-10)
COLLS="${TMPDIR:-/tmp}/codestack-colls-$digest"
mkdir -p "$COLLS/ansible_collections/llmops"
ln -sfn "$REPO" "$COLLS/ansible_collections/llmops/codestack"
export ANSIBLE_COLLECTIONS_PATH="$COLLS${ANSIBLE_COLLECTIONS_PATH:+:$ANSIBLE_COLLECTIONS_PATH}"

read -r -a extra <<< "${EXTRA:-}"
if [ "$MODE" = plan ]; then
  OUT="${OUT:-$PWD/out/plan}"
  say "planning $BLUEPRINT"
  ansible-playbook "$REPO/playbooks/plan.yml" -e "blueprint=$BLUEPRINT" -e "plan_output=$OUT" "${extra[@]}"
  say "done"
  echo "Report: $OUT/report.md (chart: $OUT/cost-vs-time.svg)"
  echo "Plan:   $OUT/plan.json"
else
  OUT="${OUT:-$PWD/out/stack}"
  say "building the stack of $BLUEPRINT on this machine (first run compiles llama.cpp, ~10 min)"
  ansible-playbook "$REPO/playbooks/site.yml" -e "blueprint=$BLUEPRINT" -e "codestack_output=$OUT" "${extra[@]}"
  say "done: the IDE, gateway and plan are listed just above"
fi
