#!/usr/bin/env bash
# The official Vast.ai client (tests/integration/test_vast_fake_clients.py drives it against the
# fake) and hcloud (catalog refresh). Fast when already installed.
set -euo pipefail
python3 - <<'PY' 2>/dev/null && exit 0
import importlib.metadata as md, sys
sys.exit(0 if md.version("vastai") == "1.9.1" and md.version("hcloud") else 1)
PY
python3 -m pip install -q 'vastai==1.9.1' hcloud
