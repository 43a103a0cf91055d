#!/usr/bin/env bash
# RunPod tests: graphql-core parses GraphQL in the fake; the official runpod SDK is driven
# against the fake to keep it honest. Fast when already installed.
set -euo pipefail
if python3 -c "import graphql, runpod" 2>/dev/null; then
  exit 0
fi
flock /tmp/codestack-pip.lock python3 -m pip install -q 'graphql-core>=3.2' runpod
