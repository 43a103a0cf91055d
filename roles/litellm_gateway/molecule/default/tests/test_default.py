"""Verify litellm_gateway (+ llamacpp_server) in the Molecule container (testinfra over podman exec)."""

testinfra_hosts = ["podman://codestack-litellm-molecule"]

DIR = "/var/lib/codestack/litellm"

CHAT = r"""
import json, sys, urllib.request
key = open("/var/lib/codestack/litellm/master_key").read().strip()
for alias in ("architect", "coder", "debugger", "reviewer", "intent"):
    req = urllib.request.Request("http://127.0.0.1:4000/v1/chat/completions",
        data=json.dumps({"model": alias, "max_tokens": 6,
                         "messages": [{"role": "user", "content": "hi"}]}).encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=300) as resp:
        assert resp.headers["x-litellm-model-group"] == alias
        assert json.loads(resp.read())["choices"][0]["message"]["content"]
print("ok")
"""


def test_both_services_run_under_systemd(host):
    for name in ("codestack-litellm", "codestack-llamacpp"):
        service = host.service(name)
        assert service.is_running, name
        assert service.is_enabled, name


def test_secrets_are_private_and_not_in_the_config(host):
    for name in ("master_key", "env", "config.yaml"):
        assert host.file(DIR + "/" + name).mode == 0o600, name
    master = host.file(DIR + "/master_key").content_string.strip()
    assert master.startswith("sk-")
    config = host.file(DIR + "/config.yaml").content_string
    assert master not in config and "os.environ/LITELLM_MASTER_KEY" in config
    assert 'callbacks:\n  - prometheus' in config or "- prometheus" in config


def test_every_alias_answers_through_the_gateway(host):
    out = host.run("python3 -c %s", CHAT)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_readiness_and_metrics(host):
    probe = ("import urllib.request as u; "
             "print(u.urlopen('http://127.0.0.1:4000/health/readiness').status, "
             "'litellm' in u.urlopen('http://127.0.0.1:4000/metrics').read().decode())")
    out = host.run("python3 -c %s", probe)
    assert out.stdout.split() == ["200", "True"]
