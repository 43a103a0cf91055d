"""roles/reverse_proxy without Molecule: the argument specs, and the Caddyfile it renders, read
back by Caddy itself (``caddy adapt``, the binary tests/setup/45-caddy.sh unpacks)."""

import json
import os
import shutil
import subprocess

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "reverse_proxy")
CADDY = next((path for path in (
    os.path.join(os.environ.get("CODESTACK_CACHE", os.path.expanduser("~/.cache/codestack")), "caddy/usr/bin/caddy"),
    shutil.which("caddy") or "") if path and os.access(path, os.X_OK)), None)


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


SPEC = _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
DEFAULTS = _load("defaults", "main.yml")
SITES = [{"name": "gateway", "port": 443, "upstream": "127.0.0.1:4000"},
         {"name": "ide", "port": 8443, "upstream": "127.0.0.1:8080"}]


def _render(template, **overrides):
    variables = dict(DEFAULTS, ansible_managed="Ansible managed", reverse_proxy_sites=SITES,
                     reverse_proxy_dir="/var/lib/codestack-proxy/cs-1")
    variables.update(_load("vars", "main.yml"))
    variables.update(overrides)
    with open(os.path.join(ROLE, "templates", template)) as handle:
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(handle.read()))


def _adapt(tmp_path, text):
    """Caddy's own reading of the Caddyfile, as JSON."""
    if CADDY is None:
        pytest.skip("no caddy binary: run tests/setup/45-caddy.sh")
    path = tmp_path / "Caddyfile"
    path.write_text(text)
    proc = subprocess.run([CADDY, "adapt", "--adapter", "caddyfile", "--config", str(path)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_every_default_is_documented_with_the_same_value():
    assert set(DEFAULTS) == set(SPEC)
    for name, value in DEFAULTS.items():
        assert SPEC[name]["default"] == value, name
        assert SPEC[name].get("description") and name.startswith("reverse_proxy_")


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROLE, "templates"))))
def test_templates_start_with_ansible_managed(name):
    with open(os.path.join(ROLE, "templates", name)) as handle:
        assert handle.readline().strip() == "{{ ansible_managed | comment }}"


def test_handlers_listen_and_skip_in_check_mode():
    for handler in _load("handlers", "main.yml"):
        assert handler["listen"] == "restart reverse proxy"
        assert "not ansible_check_mode" in handler["when"]


def test_internal_ca_sites_on_every_address_without_port_80(tmp_path):
    config = _adapt(tmp_path, _render("Caddyfile.j2", reverse_proxy_names=["203.0.113.5", "2001:db8::5"]))
    assert config["admin"] == {"disabled": True}
    assert config["storage"] == {"module": "file_system", "root": "/var/lib/codestack-proxy/cs-1/data"}
    servers = config["apps"]["http"]["servers"]
    listens = sorted(addr for server in servers.values() for addr in server["listen"])
    assert listens == [":443", ":8443"]            # the two sites' ports only: no :80, no redirects
    for server in servers.values():
        assert server["automatic_https"] == {"disable_redirects": True}
        assert server["routes"][0]["match"] == [{"host": ["203.0.113.5", "2001:db8::5"]}]
    upstreams = sorted(server["routes"][0]["handle"][0]["routes"][0]["handle"][0]["upstreams"][0]["dial"]
                       for server in servers.values())
    assert upstreams == ["127.0.0.1:4000", "127.0.0.1:8080"]
    policy, = config["apps"]["tls"]["automation"]["policies"]
    assert sorted(policy["subjects"]) == ["2001:db8::5", "203.0.113.5"] and policy["issuers"] == [{"module": "internal"}]
    assert config["apps"]["pki"]["certificate_authorities"]["local"]["install_trust"] is False


def test_acme_for_a_domain_without_the_http_challenge(tmp_path):
    config = _adapt(tmp_path, _render("Caddyfile.j2", reverse_proxy_domain="code.example.org",
                                      reverse_proxy_names=["203.0.113.5"], reverse_proxy_acme_email="ops@example.org",
                                      reverse_proxy_acme_ca="https://acme-staging-v02.api.letsencrypt.org/directory"))
    policy, = config["apps"]["tls"]["automation"]["policies"]
    assert policy["subjects"] == ["code.example.org"]
    assert policy["issuers"] == [{"module": "acme", "ca": "https://acme-staging-v02.api.letsencrypt.org/directory",
                                  "email": "ops@example.org", "challenges": {"http": {"disabled": True}}}]
    # skip_install_trust only: no site uses the internal CA.
    assert "internal" not in json.dumps(config["apps"]["tls"])


def test_bind_addresses_narrow_the_listeners(tmp_path):
    config = _adapt(tmp_path, _render("Caddyfile.j2", reverse_proxy_names=["203.0.113.5"],
                                      reverse_proxy_bind_addresses=["203.0.113.5"]))
    assert sorted(a for s in config["apps"]["http"]["servers"].values() for a in s["listen"]) == [
        "203.0.113.5:443", "203.0.113.5:8443"]


def test_unit_runs_unprivileged_with_only_the_bind_capability():
    unit = _render("caddy.service.j2")
    lines = set(unit.splitlines())
    assert {"User=caddy", "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
            "NoNewPrivileges=true"} <= lines
    assert ("ExecStart=/usr/bin/caddy run --config /var/lib/codestack-proxy/cs-1/Caddyfile --adapter caddyfile"
            in lines)
    # --environ would print the service's environment to the log.
    assert "--environ" not in unit


@pytest.mark.parametrize("upstream, loopback", [
    ("127.0.0.1:4000", True), ("127.0.0.53:1", True), ("localhost:8080", True), ("[::1]:4000", True),
    ("0.0.0.0:4000", False), ("203.0.113.5:4000", False), ("10.0.0.1:80", False), ("127.0.0.1", False),
])
def test_preflight_accepts_loopback_upstreams_only(upstream, loopback):
    assert_task = [t for t in _load("tasks", "preflight.yml") if "ansible.builtin.assert" in t][0]
    expression = assert_task["vars"]["_reverse_proxy_not_loopback"]
    rejected = Templar(loader=DataLoader(), variables={
        "reverse_proxy_sites": [{"name": "x", "port": 1, "upstream": upstream}]}).template(
            trust_as_template(expression))
    assert rejected == ([] if loopback else [upstream])
