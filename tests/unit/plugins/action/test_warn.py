"""llmops.codestack.warn runs on the controller: it warns for a host it cannot even reach."""

import json
import os
import subprocess

# Only ansible-core: the compat tier runs without ansible.posix (no json callback), so the
# registered result is written to a file by the controller and the warning read off stderr.
PLAY = """
- hosts: unreachable
  gather_facts: false
  tasks:
    - name: Warn
      llmops.codestack.warn:
        msg: "extension deferred: run the installer later"
      register: warned
    - name: Keep the result
      ansible.builtin.copy:
        content: "{{ warned | to_json }}"
        dest: "{{ result_path }}"
        mode: "0600"
      delegate_to: localhost
      vars:
        ansible_connection: local
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""


def test_warns_without_a_connection(tmp_path):
    (tmp_path / "play.yml").write_text(PLAY)
    result = tmp_path / "warned.json"
    # TEST-NET-1: nothing answers there; a module run would fail as unreachable.
    (tmp_path / "inventory").write_text("unreachable ansible_host=192.0.2.1 ansible_connection=ssh\n")
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "inventory"), str(tmp_path / "play.yml"),
                           "-e", json.dumps({"result_path": str(result)})],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    warned = json.loads(result.read_text())
    assert warned["changed"] is False and warned["msg"] == "extension deferred: run the installer later"
    assert "extension deferred: run the installer later" in proc.stdout + proc.stderr
    assert "unreachable=0" in proc.stdout and "failed=0" in proc.stdout
