"""The Hetzner Cloud fake answers Hetzner's official client (hcloud) as the API documents.

SSH keys, firewalls (in use: refused), servers with both, label selectors, actions that run
before they succeed, and the API's errors, through ``hcloud.Client(api_endpoint=<fake>)``.
"""

import os
import subprocess
import sys

import pytest

hcloud = pytest.importorskip("hcloud")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from hetzner_fake import HetznerFake, parse_selector  # noqa: E402  pylint: disable=wrong-import-position

from hcloud import APIException  # noqa: E402  pylint: disable=wrong-import-position
from hcloud.firewalls import FirewallRule  # noqa: E402  pylint: disable=wrong-import-position
from hcloud.images import Image  # noqa: E402  pylint: disable=wrong-import-position
from hcloud.server_types import ServerType  # noqa: E402  pylint: disable=wrong-import-position


@pytest.fixture
def fake():
    with HetznerFake(api_key="t", server_ipv4="127.0.0.1", action_delay=0.2, running_delay=0.2) as running:
        yield running


@pytest.fixture
def client(fake):
    return hcloud.Client(token="t", api_endpoint=fake.url, poll_interval=0.1)


@pytest.fixture
def public_key(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


@pytest.mark.parametrize("selector,labels,matches", [
    ("codestack-stack=s1", {"codestack-stack": "s1"}, True),
    ("codestack-stack==s1", {"codestack-stack": "s2"}, False),
    ("codestack-stack", {"codestack-stack": "x"}, True),
    ("!codestack-stack", {"codestack-stack": "x"}, False),
    ("env!=prod", {}, True),
    ("env in (dev,test),role", {"env": "test", "role": "gw"}, True),
    ("env notin (dev, test)", {"env": "dev"}, False),
])
def test_label_selectors(selector, labels, matches):
    assert parse_selector(selector)(labels) is matches


def test_bad_selector_is_refused(client):
    with pytest.raises(APIException) as err:
        client.servers.get_all(label_selector="a=(b")
    assert err.value.code == "invalid_input"


def test_server_with_key_and_firewall_then_teardown_order(fake, client, public_key):
    labels = {"codestack-stack": "s1"}
    key = client.ssh_keys.create(name="s1-control", public_key=public_key, labels=labels)
    assert key.fingerprint.count(":") == 15
    with pytest.raises(APIException) as err:
        client.ssh_keys.create(name="other", public_key=public_key)
    assert err.value.code == "uniqueness_error"
    rules = [FirewallRule(direction="in", protocol="tcp", port="22", source_ips=["0.0.0.0/0"])]
    firewall = client.firewalls.create(name="s1-control", rules=rules, labels=labels).firewall
    with pytest.raises(APIException) as err:
        client.firewalls.create(name="bad", rules=[FirewallRule(direction="in", protocol="tcp", source_ips=["::/0"])])
    assert err.value.code == "invalid_input"

    created = client.servers.create(name="s1-control", server_type=ServerType(name="cx22"),
                                    image=Image(name="debian-12"), ssh_keys=[key], firewalls=[firewall],
                                    labels=labels)
    assert created.root_password is None and created.server.public_net.ipv4.ip == "127.0.0.1"
    assert created.action.status == "running" and created.server.status == "initializing"
    created.action.wait_until_finished()
    server = client.servers.get_by_id(created.server.id)
    assert server.status == "running"
    assert [f.firewall.id for f in server.public_net.firewalls] == [firewall.id]

    found = client.servers.get_all(label_selector="codestack-stack=s1")
    assert [s.id for s in found] == [server.id] and client.servers.get_all(label_selector="codestack-stack=s2") == []
    assert [f.id for f in client.firewalls.get_all(label_selector="codestack-stack=s1")] == [firewall.id]
    assert [k.id for k in client.ssh_keys.get_all(label_selector="codestack-stack=s1")] == [key.id]

    # A firewall still applied to a server cannot go; once the server is deleted it can.
    with pytest.raises(APIException) as err:
        client.firewalls.delete(firewall)
    assert err.value.code == "resource_in_use"
    client.servers.delete(server).wait_until_finished()
    assert client.firewalls.delete(firewall) is True
    client.ssh_keys.delete(key)
    snap = fake.snapshot()
    assert (snap["servers"], snap["firewalls"], snap["ssh_keys"]) == ([], [], [])
    assert snap["deleted"] == {"servers": [server.id], "firewalls": [firewall.id], "ssh_keys": [key.id]}


def test_errors_are_the_apis(fake, client):
    with pytest.raises(APIException) as err:
        client.servers.create(name="x", server_type=ServerType(name="cx99"), image=Image(name="debian-12"))
    assert err.value.code == "invalid_input"
    with pytest.raises(APIException) as err:
        client.servers.create(name="x", server_type=ServerType(name="cx22"), image=Image(name="debian-12"),
                              labels={"bad key!": "v"})
    assert err.value.code == "invalid_input"
    unauthorized = hcloud.Client(token="wrong", api_endpoint=fake.url)
    with pytest.raises(APIException) as err:
        unauthorized.servers.get_all()
    assert err.value.code == "unauthorized"
