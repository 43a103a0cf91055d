"""Shared helpers for the code_server_kilocode tests: apply the role to localhost."""

import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "fixtures")
CACHE = os.environ.get("CODESTACK_CACHE") or os.path.expanduser("~/.cache/codestack")
CODE_SERVER_VERSION = "4.139.1"
CODE_SERVER_PREFIX = os.path.join(CACHE, "code-server-" + CODE_SERVER_VERSION)
KILO_PREFIX = os.path.join(CACHE, "kilo-cli-7.7.7")
KILO_CLI = os.path.join(KILO_PREFIX, "bin", "kilo")
ROLES = ("architect", "coder", "debugger", "reviewer")
ALIASES = {"architect": "arch-alias", "coder": "coder-alias", "debugger": "debug-alias",
           "reviewer": "review-alias"}

PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - llmops.codestack.code_server_kilocode
  post_tasks:
    - name: Hand the returned fact to the test
      ansible.builtin.copy:
        content: "{{ code_server_kilocode_login | to_json }}"
        dest: "{{ login_out }}"
        mode: "0600"
      check_mode: false
      changed_when: false  # test plumbing, not part of the role's idempotence
      tags: [always]
"""


def base_vars(home, **overrides):
    """Variables for a run as the current user with ``home`` as the home directory."""
    user = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
    variables = {
        "code_server_kilocode_user": user,
        "code_server_kilocode_group": subprocess.run(["id", "-gn"], capture_output=True, text=True,
                                                     check=True).stdout.strip(),
        "code_server_kilocode_user_create": False,
        "code_server_kilocode_home": str(home),
        "code_server_kilocode_gateway_url": "http://127.0.0.1:4000",
        "code_server_kilocode_gateway_api_key": "sk-test-gateway-key",
        "code_server_kilocode_role_aliases": ALIASES,
        "code_server_kilocode_prompts_dir": os.path.join(FIXTURES, "prompts"),
        "code_server_kilocode_blueprint_file": os.path.join(FIXTURES, "blueprint-ide.yml"),
        "code_server_kilocode_service_state": "stopped",
        # The Kilo CLI that tests/setup/40-ide.sh installed (the role finds its version and skips npm).
        "code_server_kilocode_cli_prefix": KILO_PREFIX,
        "code_server_kilocode_cli_install": os.path.exists(KILO_CLI),
    }
    variables.update(overrides)
    return variables


def apply_role(tmp_path, variables, tags=None, check=False, name="run"):
    """Run the role; return (returncode, output, login fact or None)."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    login_out = tmp_path / ("%s-login.json" % name)
    if login_out.exists():
        login_out.unlink()
    extra = tmp_path / ("%s-vars.json" % name)
    extra.write_text(json.dumps(dict(variables, login_out=str(login_out))))
    argv = ["ansible-playbook", str(playbook), "-e", "@" + str(extra)]
    if tags:
        argv += ["--tags", tags]
    if check:
        argv.append("--check")
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=str(tmp_path),
                          check=False)
    output = proc.stdout + proc.stderr
    login = json.loads(login_out.read_text()) if login_out.exists() else None
    return proc.returncode, output, login


def changed_count(output):
    for line in output.splitlines():
        if line.startswith("localhost") and "changed=" in line:
            return int(line.split("changed=")[1].split()[0])
    raise AssertionError("no PLAY RECAP in output:\n" + output[-3000:])


def read_jsonc(path):
    with open(path) as handle:
        return json.loads("\n".join(line for line in handle.read().splitlines()
                                    if not line.lstrip().startswith("//")))
