"""A control server created at the Hetzner Cloud fake, recorded, reached and torn down.

Fast round trip (CI): the control_server role (provision.yml's first play) creates the SSH key,
the firewall (SSH and the TLS ports only) and the server at the Hetzner fake through the
hetzner.hcloud modules, records each in state.json, waits for the server's SSH banner and adds it
to codestack_control (check run: nothing asked of the fake; re-run: nothing changed); teardown.yml
without HCLOUD_TOKEN fails naming it, then finds them by state.json and, for the server whose
record a crash lost, by the stack's label, and removes them. The server's address is this machine's loopback, where a
listener answers the SSH banner (what the wait looks for; the remote test below logs in for real
on a podman control host).
"""

import json
import os
import socket
import subprocess
import sys
import threading

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))

from hetzner_fake import HetznerFake  # noqa: E402  pylint: disable=wrong-import-position

pytestmark = [pytest.mark.integration]

TOKEN = "hz-test-token"
STACK_ID = "codestack-cpserver"


class Banner:
    """A TCP port that greets like sshd (RFC 4253 identification string), then closes."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _addr = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")

    def close(self):
        self.sock.close()


def _stack_dir(tmp_path):
    out = tmp_path / "stack"
    out.mkdir()
    plan = json.loads(open(os.path.join(HERE, "targets", "serving_stack", "plan.json")).read())
    plan["stack_id"] = STACK_ID
    (out / "plan.json").write_text(json.dumps(plan))
    return out


def _run(argv, env, timeout=240):
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return proc


def _env(fake, tmp_path, token=TOKEN):
    env = dict(os.environ, HCLOUD_ENDPOINT=fake.url, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))
    env.pop("HCLOUD_TOKEN", None)
    if token:
        env["HCLOUD_TOKEN"] = token
    return env


def test_hetzner_control_server_round_trip(tmp_path):
    banner = Banner()
    fake = HetznerFake(api_key=TOKEN, server_ipv4="127.0.0.1", action_delay=0).start()
    try:
        out = _stack_dir(tmp_path)
        request = {"provider": "hetzner", "server_type": "cx22", "location": "nbg1", "image": "debian-12",
                   "ssh_port": banner.port, "wait_timeout": 60}
        variables = {"codestack_output": str(out), "codestack_control_server": request}
        create = ["ansible-playbook", os.path.join(HERE, "targets", "control_server", "create.yml"),
                  "-e", json.dumps(variables)]

        checked = _run(create + ["--check"], _env(fake, tmp_path))
        assert checked.returncode == 0, checked.stdout[-3000:]
        assert "Would create at hetzner: server %s-control" % STACK_ID in checked.stdout
        assert fake.snapshot()["counters"]["requests"] == 0 and not (out / "state.json").exists()

        first = _run(create, _env(fake, tmp_path))
        assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-2000:]
        shown = next(line for line in first.stdout.splitlines() if '"msg": "{' in line)
        assert "[\\\"control\\\"]" in shown and "127.0.0.1" in shown and str(banner.port) in shown, shown

        live = fake.snapshot()
        label = {"codestack-stack": STACK_ID}
        (server,), (firewall,), (key,) = live["servers"], live["firewalls"], live["ssh_keys"]
        assert server["labels"] == firewall["labels"] == key["labels"] == label
        assert (server["server_type"]["name"], server["datacenter"]["location"]["name"]) == ("cx22", "nbg1")
        assert server["public_net"]["ipv4"]["ip"] == "127.0.0.1"
        assert firewall["applied_to"] == [{"type": "server", "server": {"id": server["id"]}}]
        assert sorted(r["port"] for r in firewall["rules"]) == sorted([str(banner.port), "443", "8443"])
        assert {r["direction"] for r in firewall["rules"]} == {"in"}
        public = (tmp_path / "stack" / "control-server" / "id_ed25519.pub").read_text().split()
        assert key["public_key"].split()[:2] == public[:2]
        assert oct((tmp_path / "stack" / "control-server" / "id_ed25519").stat().st_mode & 0o777) == "0o600"

        state = json.loads((out / "state.json").read_text())
        recorded = dict(((r["provider"], r["kind"]), r) for r in state["resources"])
        assert set(recorded) == {("hetzner", "server"), ("hetzner", "firewall"), ("hetzner", "ssh_key")}
        assert recorded[("hetzner", "server")]["id"] == str(server["id"])
        attrs = recorded[("hetzner", "server")]["attributes"]
        assert (attrs["address"], int(attrs["ssh_port"]), attrs["inventory_name"]) == ("127.0.0.1", banner.port, "control")
        # The fake's cx22 costs EUR 0.006 net, 0.00714 gross an hour; the catalog's EUR rate is 1.08.
        assert recorded[("hetzner", "server")]["cost_per_hour"] == pytest.approx(0.006 * 1.19 * 1.08, rel=1e-4)

        # A re-run finds what exists: nothing new at the fake, the same records.
        again = _run(create, _env(fake, tmp_path))
        assert again.returncode == 0, again.stdout[-3000:]
        for task in (": Upload the SSH key]", ": Create the firewall (", ": Create the server]"):
            outcome = again.stdout.split(task, 1)[1].split("TASK [", 1)[0]
            assert "ok: [localhost]" in outcome and "changed:" not in outcome, (task, outcome)
        again_live = fake.snapshot()
        assert (len(again_live["firewalls"]), len(again_live["ssh_keys"])) == (1, 1)

        # Teardown without the token fails naming it, and removes nothing.
        teardown = ["ansible-playbook", os.path.join(REPO, "playbooks", "teardown.yml"),
                    "-e", json.dumps({"codestack_output": str(out)})]
        no_key = _run(teardown, _env(fake, tmp_path, token=None))
        assert no_key.returncode != 0 and "HCLOUD_TOKEN" in no_key.stdout, no_key.stdout[-3000:]
        assert len(fake.snapshot()["servers"]) == 1

        # A crash between the create call and its record: the server is only under the label.
        state["resources"] = [r for r in state["resources"] if r["kind"] != "server"]
        (out / "state.json").write_text(json.dumps(state))
        down = _run(teardown, _env(fake, tmp_path))
        assert down.returncode == 0, down.stdout[-5000:]
        live = fake.snapshot()
        assert (live["servers"], live["firewalls"], live["ssh_keys"]) == ([], [], [])
        assert live["deleted"] == {"servers": [server["id"]], "firewalls": [firewall["id"]], "ssh_keys": [key["id"]]}
        assert "3 of 3 resource(s) done" in down.stdout, down.stdout[-3000:]
        report = json.loads((out / "teardown.json").read_text())
        assert sorted((r["kind"], r["outcome"], r["source"]) for r in report["resources"]) == [
            ("firewall", "removed", "state+label"), ("server", "removed", "label"),
            ("ssh_key", "removed", "state+label")]
        state = json.loads((out / "state.json").read_text())
        assert state["resources"] == [] and sorted(r["kind"] for r in state["removed"]) == ["firewall", "ssh_key"]
    finally:
        fake.stop()
        banner.close()
