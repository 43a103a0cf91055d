"""teardown.yml tells the truth: a teardown by stack id that cannot look fails naming the keys it
lacks; a local service that is already stopped counts as gone, not failed."""

import json
import os
import subprocess
import time

from _provider_helpers import run_provider_playbook

HERE = os.path.dirname(os.path.abspath(__file__))
TEARDOWN = os.path.join(HERE, "..", "..", "playbooks", "teardown.yml")
NO_KEYS = {"RUNPOD_API_KEY": "", "VAST_API_KEY": ""}


def test_teardown_by_stack_id_without_keys_fails_naming_them(tmp_path):
    out = tmp_path / "gone"
    proc = run_provider_playbook(TEARDOWN, tmp_path, {"codestack_output": str(out),
                                                      "codestack_stack_id": "codestack-lost"}, NO_KEYS)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert "Cannot tear down stack codestack-lost" in proc.stdout
    assert "RUNPOD_API_KEY and VAST_API_KEY are not set" in proc.stdout
    assert "0 of 0 resource(s) done" not in proc.stdout and not (out / "teardown.json").exists()
    # A provider the user rules out is not asked for: only the other key is named.
    proc = run_provider_playbook(TEARDOWN, tmp_path, {"codestack_output": str(out),
                                                      "codestack_stack_id": "codestack-lost",
                                                      "teardown_search_runpod": "never"}, NO_KEYS)
    assert proc.returncode == 2 and "VAST_API_KEY is not set" in proc.stdout, proc.stdout[-3000:]
    assert "RUNPOD_API_KEY" not in proc.stdout.split("Cannot tear down", 1)[1].split("\n")[0]


def test_already_stopped_local_service_is_gone_not_failed(tmp_path):
    out = tmp_path / "stack"
    out.mkdir()
    pidfile = tmp_path / "running.pid"
    subprocess.run(["start-stop-daemon", "--start", "--background", "--make-pidfile", "--pidfile", str(pidfile),
                    "--exec", "/bin/sleep", "--", "300"], check=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def service(ident, pid):
        return {"provider": "local", "kind": "service", "id": ident, "name": ident, "cost_per_hour": 0,
                "created_at": stamp, "attributes": {"stop_argv": [
                    "start-stop-daemon", "--stop", "--pidfile", pid, "--remove-pidfile", "--retry", "TERM/5/KILL/2"]}}

    # The other stack's teardown stopped this one's code-server already: its pidfile names nothing.
    (out / "state.json").write_text(json.dumps({"stack_id": "codestack-first", "removed": [], "resources": [
        service("code-server", str(tmp_path / "stopped.pid")), service("litellm", str(pidfile))]}))
    proc = run_provider_playbook(TEARDOWN, tmp_path, {"codestack_output": str(out)}, NO_KEYS)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert "2 of 2 resource(s) done" in proc.stdout
    report = json.loads((out / "teardown.json").read_text())
    outcomes = {line["id"]: (line["outcome"], line["message"]) for line in report["resources"]}
    assert outcomes == {"code-server": ("gone", "already stopped"), "litellm": ("removed", None)}
    assert not pidfile.exists() and json.loads((out / "state.json").read_text())["resources"] == []
