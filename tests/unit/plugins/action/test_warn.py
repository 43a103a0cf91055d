"""llmops.codestack.warn runs on the controller: it warns for a host it cannot even reach."""

import json
import os
import subprocess

PLAY = """
- hosts: unreachable
  gather_facts: false
  tasks:
    - name: Warn
      llmops.codestack.warn:
        msg: "extension deferred: run the installer later"
      register: warned
    - name: Show it
      ansible.builtin.debug:
        msg: "{{ warned | to_json }}"
"""


def test_warns_without_a_connection(tmp_path):
    (tmp_path / "play.yml").write_text(PLAY)
    # TEST-NET-1: nothing answers there; a module run would fail as unreachable.
    (tmp_path / "inventory").write_text("unreachable ansible_host=192.0.2.1 ansible_connection=ssh\n")
    proc = subprocess.run(["ansible-playbook", "-i", str(tmp_path / "inventory"), str(tmp_path / "play.yml")],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    plays = json.loads(proc.stdout)["plays"][0]["tasks"]
    warned = plays[0]["hosts"]["unreachable"]
    assert warned["changed"] is False and warned["msg"] == "extension deferred: run the installer later"
    assert warned["warnings"] == ["extension deferred: run the installer later"]
    stats = json.loads(proc.stdout)["stats"]["unreachable"]
    assert stats["unreachable"] == 0 and stats["failures"] == 0
