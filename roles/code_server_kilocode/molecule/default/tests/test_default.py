"""Verify code_server_kilocode in the Molecule container (testinfra over podman exec)."""

import json
import re

testinfra_hosts = ["podman://codestack-ide-molecule"]

HOME = "/home/codestack"
BIN = "/opt/code-server/bin/code-server"
ROLES = {"architect": "arch-alias", "coder": "coder-alias", "debugger": "debug-alias",
         "reviewer": "review-alias"}

LOGIN = r"""
import http.client, sys, urllib.parse
body = urllib.parse.urlencode({"password": sys.argv[1]})
conn = http.client.HTTPConnection("127.0.0.1", 8080, timeout=10)
conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
resp = conn.getresponse()
print(resp.status, "session" if "code-server-session=" in (resp.getheader("Set-Cookie") or "") else "none")
"""


def _jsonc(text):
    return json.loads("\n".join(line for line in text.splitlines()
                                if not line.lstrip().startswith("//")))


def _password(host):
    config = host.file(HOME + "/.config/code-server/config.yaml").content_string
    return re.search(r'^password: "(.+)"$', config, re.M).group(1)


def test_service_runs_under_systemd(host):
    service = host.service("code-server-kilocode")
    assert service.is_running
    assert service.is_enabled
    unit = host.file("/etc/systemd/system/code-server-kilocode.service").content_string
    assert "User=codestack" in unit


def test_listens_on_loopback_only(host):
    # No ss/netstat in the minimal image: read the kernel's table of listening sockets.
    listening = set()
    for line in host.file("/proc/net/tcp").content_string.splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            address, port = local.split(":")
            listening.add((address, int(port, 16)))
    assert ("0100007F", 8080) in listening  # 127.0.0.1:8080
    assert ("00000000", 8080) not in listening  # not 0.0.0.0:8080


def test_password_file_is_private(host):
    config = host.file(HOME + "/.config/code-server/config.yaml")
    assert config.mode == 0o600
    assert config.user == "codestack"
    assert len(_password(host)) == 24


def test_login_with_generated_password(host):
    ok = host.run("python3 -c %s %s", LOGIN, _password(host))
    assert ok.stdout.split() == ["302", "session"], ok.stdout + ok.stderr
    bad = host.run("python3 -c %s %s", LOGIN, "not-the-password")
    assert bad.stdout.split()[1] == "none", bad.stdout + bad.stderr


def test_extension_installed(host):
    out = host.check_output(
        "PATH=/opt/code-server/node-bin:$PATH runuser -u codestack -- %s --config /dev/null --user-data-dir %s --extensions-dir %s "
        "--list-extensions --show-versions", BIN, HOME + "/.local/share/code-server",
        HOME + "/.local/share/code-server/extensions")
    assert "codestack-tests.kilocode-standin@0.1.0" in out.splitlines()


def test_kilocode_config_names_gateway_and_aliases(host):
    kilo = host.file(HOME + "/.config/kilo/kilo.jsonc")
    assert kilo.mode == 0o600
    config = _jsonc(kilo.content_string)
    provider = config["provider"]["litellm"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"]["baseURL"] == "http://127.0.0.1:4000/v1"
    assert provider["options"]["apiKey"] == "{file:%s/.config/kilo/litellm.key}" % HOME
    assert set(provider["models"]) == set(ROLES.values())
    assert config["model"] == "litellm/coder-alias"
    for role, alias in ROLES.items():
        agent = config["agent"][role]
        assert agent["model"] == "litellm/" + alias
        assert "CODESTACK-PROMPT-%s" % role.upper() in agent["prompt"]
    assert "sk-molecule-gateway-key" not in kilo.content_string


def test_gateway_key_file_is_private(host):
    key = host.file(HOME + "/.config/kilo/litellm.key")
    assert key.mode == 0o600
    assert key.user == "codestack"
    assert key.content_string == "sk-molecule-gateway-key"


def test_workspace_has_the_brief(host):
    brief = host.file(HOME + "/workspace/BRIEF.md").content_string
    assert "# Project brief: todo-api" in brief
    assert "`review-alias`" in brief
    assert "name: todo-api" in host.file(HOME + "/workspace/blueprint.yml").content_string
