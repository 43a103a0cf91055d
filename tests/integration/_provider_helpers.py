"""What the RunPod and Vast.ai integration tests share: running one of their playbooks against a
fake (its own inventory, temp dir and credentials), and the assertion on its result."""

import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def run_provider_playbook(playbook_path, tmp_path, variables, credentials, env=None, args=(), timeout=300):
    """ansible-playbook on ``playbook_path`` with ``variables`` as extra vars and the provider's
    ``credentials`` in the environment; returns the CompletedProcess with ``wall_s``."""
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n"
                         % sys.executable)
    run_env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
                   ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
                   ANSIBLE_DEPRECATION_WARNINGS="0", **credentials)
    run_env.update(env or {})
    cmd = ["ansible-playbook", "-i", str(inventory), playbook_path, "-e", json.dumps(variables)] + list(args)
    start = time.monotonic()
    proc = subprocess.run(cmd, env=run_env, capture_output=True, text=True, timeout=timeout, check=False)
    proc.wall_s = time.monotonic() - start
    return proc


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


def stack_provision_book(path, plan_file, state_file, vllm_api_key, then=()):
    """Write a playbook at ``path`` that rents every deployment of ``plan_file`` the way the
    provision stage does (gpu_provision, tasks_from: stack), then runs the tasks ``then``."""
    import yaml  # pylint: disable=import-outside-toplevel

    path.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"plan": "{{ lookup('ansible.builtin.file', '%s') | from_json }}" % plan_file},
        "tasks": [
            {"ansible.builtin.include_role": {"name": "llmops.codestack.gpu_provision", "tasks_from": "stack"},
             "vars": {"gpu_provision_deployments": "{{ plan.deployments }}",
                      "gpu_provision_stack_id": "{{ plan.stack_id }}",
                      "gpu_provision_state_file": str(state_file), "gpu_provision_vllm_api_key": vllm_api_key,
                      "gpu_provision_wait_sleep": 1}},
        ] + list(then)}]))
    return str(path)
