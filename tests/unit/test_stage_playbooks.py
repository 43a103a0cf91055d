"""Static checks of the stage playbooks (playbooks/*.yml) that a run on the controller cannot show.

- A variable derived from ``ansible_connection`` must be fixed on the host (``set_fact``), never
  left lazy in ``vars:``: inside a task delegated to the controller it would read the
  controller's connection (``local``) instead of the control host's (the bug expose.yml and
  guard.yml had).
- Every stage that targets the control host first rejoins a created control server from
  state.json (control_join.yml), so that it also works run alone after the build.
- The budget guard gets a created control server's provider keys in destroy mode only.
"""

import json
import os
import subprocess
import sys

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOKS = os.path.join(REPO, "playbooks")


def _load(name):
    with open(os.path.join(PLAYBOOKS, name)) as handle:
        return yaml.safe_load(handle) or []


def _vars_blocks(node, where):
    """Every ``vars:`` mapping of plays, blocks and tasks under ``node``, with where it is."""
    if isinstance(node, list):
        for index, item in enumerate(node):
            yield from _vars_blocks(item, "%s[%d]" % (where, index))
    elif isinstance(node, dict):
        if isinstance(node.get("vars"), dict):
            yield "%s %s" % (where, node.get("name", "")), node["vars"]
        for key in ("tasks", "pre_tasks", "post_tasks", "handlers", "block", "rescue", "always"):
            if key in node:
                yield from _vars_blocks(node[key], "%s.%s" % (where, key))


STAGES = sorted(f for f in os.listdir(PLAYBOOKS) if f.endswith(".yml"))
TASK_FILES = sorted(os.path.join("tasks", f) for f in os.listdir(os.path.join(PLAYBOOKS, "tasks")) if f.endswith(".yml"))


@pytest.mark.parametrize("name", STAGES + TASK_FILES)
def test_no_lazy_variable_reads_the_connection(name):
    lazy = [(where, key) for where, block in _vars_blocks(_load(name), name) for key, value in block.items()
            if "ansible_connection" in json.dumps(value)]
    assert lazy == [], "derive these with set_fact on the host, not in vars: %r" % lazy


@pytest.mark.parametrize("name", ["serve.yml", "route.yml", "scale.yml", "ide.yml", "expose.yml", "guard.yml"])
def test_stages_on_the_control_host_rejoin_a_created_server_first(name):
    plays = _load(name)
    first_on_control = next(i for i, p in enumerate(plays) if "codestack_control" in str(p.get("hosts", "")))
    joins = [i for i, p in enumerate(plays) if p.get("ansible.builtin.import_playbook") == "control_join.yml"]
    assert joins and joins[0] < first_on_control


def _guard_credential_names(state, action):
    """Render guard.yml's own expression with the collection's filters (in a child process, where
    the collection loader is installed without touching this one)."""
    play = _load("guard.yml")
    block = next(t for p in play if "tasks" in p for t in p["tasks"] if t.get("name") == "Guard the budget")
    expression = block["vars"]["_guard_credential_names"]
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.path.dirname(os.path.dirname(os.path.dirname(REPO)))
    script = """
import json, sys
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
_AnsibleCollectionFinder(paths=sys.argv[1].split(':'))._install()
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template
args = json.loads(sys.stdin.read())
print(json.dumps(Templar(loader=DataLoader(), variables=args['vars']).template(trust_as_template(args['expr']))))
"""
    proc = subprocess.run([sys.executable, "-c", script, collections], check=True, capture_output=True, text=True,
                          input=json.dumps({"expr": expression, "vars": {"codestack_state": state,
                                                                         "codestack_budget_action": action}}))
    return json.loads(proc.stdout)


def test_the_guard_gets_the_control_servers_key_in_destroy_mode_only():
    hetzner = {"resources": [{"provider": "hetzner", "kind": "server", "id": "1"}]}
    exoscale = {"resources": [{"provider": "exoscale", "kind": "server", "id": "i"}]}
    rented = ["RUNPOD_API_KEY", "RUNPOD_API_BASE_URL", "VAST_API_KEY", "VAST_URL"]
    assert _guard_credential_names(hetzner, "stop") == rented
    assert _guard_credential_names(hetzner, "destroy") == rented + ["HCLOUD_TOKEN", "HCLOUD_ENDPOINT"]
    assert _guard_credential_names(exoscale, "destroy") == rented + [
        "EXOSCALE_API_KEY", "EXOSCALE_API_SECRET", "EXOSCALE_API_ENDPOINT"]
    assert _guard_credential_names({"resources": []}, "destroy") == rented


def test_the_ide_reaches_the_gateway_through_the_proxy_from_another_host():
    ide = _load("ide.yml")
    tasks = next(p for p in ide if "tasks" in p)["tasks"]
    chosen = next(t for t in tasks if t.get("name") == "Choose how the IDE reaches the gateway")
    assert "stack_gateway_client(inventory_hostname)" in chosen["ansible.builtin.set_fact"]["_ide_client"]
    opened = next(t for t in tasks if t.get("name") == "Open the IDE")
    role = next(t for t in opened["block"] if "ansible.builtin.include_role" in t)
    assert role["vars"]["code_server_kilocode_gateway_url"] == "{{ _ide_client.url }}"
    assert "_ide_client.ca_file" in role["vars"]["code_server_kilocode_gateway_ca_pem"]
    # site.yml: a first pass before expose, a second one (deferred hosts) after it.
    site = _load("site.yml")
    passes = [(i, p.get("vars", {}).get("codestack_ide_pass")) for i, p in enumerate(site)
              if p.get("ansible.builtin.import_playbook") == "ide.yml"]
    expose = next(i for i, p in enumerate(site) if p.get("ansible.builtin.import_playbook") == "expose.yml")
    assert [name for _i, name in passes] == ["before_expose", "after_expose"]
    assert passes[0][0] < expose < passes[1][0]


PEM = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"


@pytest.mark.parametrize("pem, extra", [
    ("", {}),
    (PEM, {"NODE_EXTRA_CA_CERTS": "/home/dev/.config/code-server/gateway-ca.crt"}),
])
def test_code_server_trusts_the_gateways_ca_when_given(pem, extra):
    from ansible.parsing.dataloader import DataLoader  # pylint: disable=import-outside-toplevel
    from ansible.template import Templar, trust_as_template  # pylint: disable=import-outside-toplevel
    with open(os.path.join(REPO, "roles", "code_server_kilocode", "vars", "main.yml")) as handle:
        role_vars = yaml.safe_load(handle)
    variables = {"_code_server_kilocode_home": "/home/dev", "code_server_kilocode_cli_install": False,
                 "code_server_kilocode_cli_prefix": "/opt/kilo-cli", "_code_server_kilocode_node_link_dir": "/opt/node/bin",
                 "code_server_kilocode_extensions_gallery": "", "code_server_kilocode_gateway_ca_pem": pem}
    for name in ("_code_server_kilocode_config_dir", "_code_server_kilocode_gateway_ca_file"):
        variables[name] = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(role_vars[name]))
    env = Templar(loader=DataLoader(), variables=variables).template(
        trust_as_template(role_vars["_code_server_kilocode_env"]))
    assert {k: v for k, v in env.items() if k not in ("HOME", "PATH")} == extra
