"""Verify llamacpp_server in the Molecule container (testinfra over podman exec)."""

import json

testinfra_hosts = ["podman://codestack-llamacpp-molecule"]

DIR = "/var/lib/codestack/llamacpp"

CHAT = r"""
import json, sys, urllib.request
key = open("/var/lib/codestack/llamacpp/api_key").read().strip()
req = urllib.request.Request("http://127.0.0.1:8001/v1/chat/completions",
    data=json.dumps({"model": "coder", "max_tokens": 8,
                     "messages": [{"role": "user", "content": "hi"}]}).encode(),
    headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
print(json.loads(urllib.request.urlopen(req, timeout=120).read())["choices"][0]["message"]["content"])
"""


def test_systemd_service_runs_and_is_enabled(host):
    service = host.service("codestack-llamacpp")
    assert service.is_running
    assert service.is_enabled


def test_secrets_are_private(host):
    for name in ("api_key", "config.json"):
        target = host.file(DIR + "/" + name)
        assert target.mode == 0o600, name
    config = json.loads(host.file(DIR + "/config.json").content_string)
    assert config["host"] == "127.0.0.1" and config["interrupt_requests"] is False
    assert config["models"][0]["model"].endswith(".gguf")


def test_threads_leave_a_cpu_to_the_gateway(host):
    config = json.loads(host.file(DIR + "/config.json").content_string)
    model = config["models"][0]
    cpus = int(host.check_output("nproc"))
    assert model["n_threads"] == model["n_threads_batch"] == max(cpus - 1, 1)
    assert model["n_batch"] == 512 and model["logits_all"] is False


PROBE = r"""
import socket
def refused(addr):
    try:
        socket.create_connection((addr, 8001), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True
own = socket.gethostbyname(socket.gethostname())
print(refused("127.0.0.1"), own != "127.0.0.1" and refused(own))
"""


def test_listens_on_loopback_only(host):
    # minbase has neither ss nor netstat: probe with Python instead
    out = host.run("python3 -c %s", PROBE)
    assert out.rc == 0, out.stderr
    assert out.stdout.split() == ["False", "True"]


def test_answers_a_chat_completion(host):
    out = host.run("python3 -c %s", CHAT)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip()


def test_restarted_by_systemd_after_a_crash(host):
    pid = host.run("systemctl show -p MainPID --value codestack-llamacpp").stdout.strip()
    host.run("kill -9 %s", pid)
    out = host.run("for i in $(seq 60); do p=$(systemctl show -p MainPID --value codestack-llamacpp); "
                   "[ \"$p\" != 0 ] && [ \"$p\" != %s ] && exit 0; sleep 0.5; done; exit 1", pid)
    assert out.rc == 0
