#!/usr/bin/env bash
# Fresh machine, first command: install the controller requirements and run the main job on
# the embedded default (this machine only: llama.cpp on the CPU with SmolLM2-135M, nothing
# paid, no cloud credentials).
#
#   bash scripts/quickstart.sh                       # plan blueprints/small-cli.yml
#   BLUEPRINT=blueprints/medium-webapp.yml OUT=/tmp/plan bash scripts/quickstart.sh
#
# For now the main job is the plan playbook (playbooks/plan.yml); later stages will extend it.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BLUEPRINT="${BLUEPRINT:-$REPO/blueprints/small-cli.yml}"
OUT="${OUT:-$PWD/out/plan}"
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

say "planning $BLUEPRINT"
ansible-playbook "$REPO/playbooks/plan.yml" -e "blueprint=$BLUEPRINT" -e "plan_output=$OUT"

say "done"
echo "Report: $OUT/report.md (chart: $OUT/cost-vs-time.svg)"
echo "Plan:   $OUT/plan.json"
