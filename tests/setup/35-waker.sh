#!/usr/bin/env bash
# The waker's own virtual environment, as roles/waker creates it on a control host (aiohttp and
# ansible-core, whose module_utils the provider clients import); made here once so that the
# scale-to-zero test does not pay the install.
set -euo pipefail
VENV=/opt/codestack/venvs/waker
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import aiohttp, ansible.module_utils.urls" 2>/dev/null; then
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check aiohttp ansible-core
