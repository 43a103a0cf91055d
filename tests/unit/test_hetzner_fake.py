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


def _priced_server_types(client):
    """What catalog_refresh reads (hcloud's server_types), shaped as the action plugin shapes it."""
    return [{"name": t.name, "cores": t.cores, "memory": t.memory, "disk": t.disk,
             "architecture": t.architecture, "cpu_type": t.cpu_type, "prices": t.prices,
             "deprecation": bool(t.deprecation)} for t in client.server_types.get_all()]


@pytest.mark.parametrize("lives_h", [48.0, 47.2])
def test_the_created_control_servers_bill_is_what_the_plan_priced(lives_h):
    """Refresh the prices from the API, plan with the control server, create it, let it live
    until the deadline (the fake's clock jumps), delete it: the fake's ledger is the plan's
    control_plane figure. 47.2 h: the partial hour is billed as a full one."""
    from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import load_blueprint
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
    from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
    from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan
    from ansible_collections.llmops.codestack.plugins.module_utils._price_refresh import (
        hetzner_addresses, hetzner_entries)
    import hetzner_fake

    # prices that are not the bundled catalog's: the refreshed layer must be what prices the plan
    types = [hetzner_fake._server_type(22, "cx22", 2, 4.0, 40, "x86", "shared", 0.0081, 5.11)]
    with HetznerFake(api_key="t", action_delay=0.05, running_delay=0.05, server_types=types,
                     clock_scale=1.0) as fake:
        client = hcloud.Client(token="t", api_endpoint=fake.url, poll_interval=0.05)
        refreshed = hetzner_entries(_priced_server_types(client), "2026-12-02", "Hetzner Cloud GET /v1/server_types",
                                    hetzner_addresses(client.request("GET", "/pricing")))
        catalog = load_catalog(data=[{"control_servers": refreshed}])
        blueprint = load_blueprint(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "blueprints", "small-cli.yml"))
        plan = build_plan(blueprint, estimate(blueprint, catalog), catalog,
                          control_server={"provider": "hetzner", "server_type": "cx22", "location": "hel1"})
        cp = plan["control_plane"]
        assert cp["catalog_id"] == "hetzner:cx22:hel1" and cp["price_per_hour"] == round(0.0081 * 1.19, 10)
        assert cp["address_price_per_hour"] == round(0.0008 * 1.19, 10) and cp["address_cost"] > 0

        created = client.servers.create(name="codestack-x-control", server_type=ServerType(name="cx22"),
                                        image=Image(name="debian-12"), location=hcloud.locations.Location(name="hel1"))
        created.action.wait_until_finished()
        client.servers.power_off(created.server).wait_until_finished()   # off: still billed
        fake.configure(advance_s=lives_h * 3600 - 5)
        client.servers.delete(created.server).wait_until_finished()
        fake.configure(advance_s=7200)                                     # deleted: billing ended
        ledger = fake.snapshot()["ledger"]

    # two lines, as Hetzner bills them: the server and its primary IPv4
    assert ledger["currency"] == "EUR" and [r["server_type"] for r in ledger["servers"]] == ["cx22", "primary_ipv4"]
    assert all(r["billed_hours"] == 48 and not r["live"] for r in ledger["servers"])
    billed_usd = ledger["total_eur"] * plan["totals"]["usd_per_eur"]
    if lives_h == blueprint.constraints.deadline_hours:
        assert billed_usd == pytest.approx(cp["cost_usd"], rel=1e-3, abs=1e-4)
    else:   # torn down before the deadline: never more than the plan said
        assert billed_usd <= cp["cost_usd"] + 1e-4
    assert plan["totals"]["cost_usd"] == pytest.approx(cp["cost_usd"], abs=1e-4)   # the engine is local


def test_the_fake_bills_each_calendar_month_up_to_its_monthly_price():
    import calendar
    from hetzner_fake import bill_server
    start = calendar.timegm((2026, 11, 1, 0, 0, 0))
    hours, cost = bill_server(start, start + 1000 * 3600, 0.00714, 4.5101)
    # November: 720 h, capped at 4.5101; December: 280 h at the hourly price
    assert hours == 1000 and cost == pytest.approx(4.5101 + 280 * 0.00714)
    assert bill_server(start, start + 61, 0.00714, 4.5101) == (1, pytest.approx(0.00714))
