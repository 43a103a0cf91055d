"""site.yml --check on the embedded default, before the first build: it runs every stage to the
end, exits 0, says what each stage would create, and creates nothing (no stack directory, no
service directory, no key file from a password lookup)."""

import json
import os
import subprocess

import pytest

pytestmark = [pytest.mark.integration]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_check_mode_runs_to_the_end_and_creates_nothing(tmp_path):
    out = tmp_path / "stack"
    proc = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "site.yml"), "--check",
         "-e", json.dumps({"codestack_output": str(out)})],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp")),
        capture_output=True, text=True, timeout=600, check=False, cwd=str(tmp_path))
    (tmp_path / "site-check.log").write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    text = proc.stdout
    for line in ("would rent nothing (every deployment is local)",
                 "would start llama.cpp for ",
                 "would start the LiteLLM gateway on localhost in /var/lib/codestack/",
                 "would write the IDE's scoped key (role aliases only)",
                 "would start code-server with KiloCode on localhost",
                 "Check run: nothing was created"):
        assert line in text, (line, text[-4000:])
    stack_id = text.split("/var/lib/codestack/", 1)[1].split("/", 1)[0]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ansible-tmp", "site-check.log"]
    # What the real run would create there is named, not made (unless an earlier real build made it).
    assert not os.path.exists("/var/lib/codestack/%s/litellm/master_key" % stack_id) or \
        os.path.getmtime("/var/lib/codestack/%s/litellm/master_key" % stack_id) < os.path.getmtime(tmp_path)
