#!/usr/bin/env bash
# llama.cpp's OpenAI-compatible server (llama-cpp-python[server]) for the local model engine.
# Compiling it takes ~8 min on 2 cores, so the wheel is cached in $CODESTACK_CACHE/wheels.
set -euo pipefail
version=0.3.36
cache="${CODESTACK_CACHE:-$HOME/.cache/codestack}/wheels"
mkdir -p "$cache"
if python3 -c "import llama_cpp, sys; sys.exit(0 if llama_cpp.__version__ == '$version' else 1)" 2>/dev/null \
   && python3 -c "import llama_cpp.server" 2>/dev/null; then
  exit 0
fi
if ! compgen -G "$cache/llama_cpp_python-$version-*.whl" >/dev/null; then
  echo "building llama-cpp-python $version once (about 8 minutes on 2 cores)"
  python3 -m pip wheel -q --no-deps "llama-cpp-python==$version" -w "$cache"
fi
wheels=("$cache"/llama_cpp_python-"$version"-*.whl)
python3 -m pip install -q "${wheels[0]}[server]"
