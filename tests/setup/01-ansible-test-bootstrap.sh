#!/usr/bin/env bash
# ansible-test downloads a pip bootstrap script from the internet before sanity/units; this
# machine is offline. The stand-in does the same job with ensurepip and the local index.
set -euo pipefail
dest="$HOME/.ansible/test/cache"
mkdir -p "$dest"
# ansible-core 2.19 asks for 24.2, 2.21 for 25.2 (tier compat).
for version in 24_2 25_0 25_2 25_3; do
  cat > "$dest/get_pip_${version}.py" <<'PY'
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
if args:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "--upgrade"] + args)
PY
done
