"""Unit tests of the control_server_spec and control_server_price filters."""

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter import control_server


def test_spec_fills_the_provider_defaults_and_opens_ssh_and_tls_only():
    spec = control_server.control_server_spec({"provider": "hetzner"}, "codestack-demo", [443, 8443])
    assert (spec["name"], spec["server_type"], spec["location"], spec["image"]) == (
        "codestack-demo-control", "cx22", "fsn1", "debian-12")
    assert spec["labels"] == {"codestack-stack": "codestack-demo"}
    assert spec["label_selector"] == "codestack-stack=codestack-demo"
    assert [(r["direction"], r["protocol"], r["port"]) for r in spec["rules"]] == [
        ("in", "tcp", "22"), ("in", "tcp", "443"), ("in", "tcp", "8443")]
    assert spec["keys"] == ["HCLOUD_TOKEN"] and spec["ssh_user"] == "root" and spec["wait_timeout"] == 600


def test_spec_takes_the_users_choices():
    spec = control_server.control_server_spec(
        {"provider": "hetzner", "server_type": "cax21", "location": "hel1", "image": "ubuntu-24.04",
         "ssh_port": 2222, "public_ports": [8443, 443, 443], "ssh_sources": ["192.0.2.0/24"],
         "name": "gw", "wait_timeout": "30"}, "s1", [443])
    assert (spec["name"], spec["server_type"], spec["location"], spec["ssh_port"]) == ("gw", "cax21", "hel1", 2222)
    assert spec["public_ports"] == [443, 8443] and spec["wait_timeout"] == 30
    assert spec["rules"][0] == {"direction": "in", "protocol": "tcp", "port": "2222", "source_ips": ["192.0.2.0/24"],
                                "description": "SSH (Ansible)"}
    assert spec["rules"][1]["source_ips"] == ["0.0.0.0/0", "::/0"]


def test_spec_exoscale_names_both_keys():
    spec = control_server.control_server_spec({"provider": "exoscale"}, "s1", [443])
    assert spec["keys"] == ["EXOSCALE_API_KEY", "EXOSCALE_API_SECRET"] and spec["location"] == "ch-gva-2"


@pytest.mark.parametrize("request_,stack_id,match", [
    ({"provider": "aws"}, "s1", "provider must be one of exoscale, hetzner, not 'aws'"),
    ({"provider": "hetzner", "size": "big"}, "s1", r"unknown key\(s\) size"),
    ({"provider": "aws", "size": 1}, "s1", "not 'aws'; unknown key"),
    ({"provider": "hetzner"}, "Stack With Spaces", "cannot be a label value"),
    ({"provider": "hetzner", "ssh_port": 70000}, "s1", "ssh_port 70000 is not a port"),
    ({"provider": "hetzner", "ssh_port": 443}, "s1", "ssh_port 443 is also in public_ports"),
    ({"provider": "hetzner", "public_ports": []}, "s1", "public_ports must be a non-empty list"),
    ({"provider": "hetzner", "ssh_sources": ["everyone"]}, "s1", "ssh_sources must be a non-empty list of CIDRs"),
    ({"provider": "hetzner", "wait_timeout": "soon"}, "s1", "wait_timeout must be seconds"),
    ("hetzner", "s1", "must be a dict"),
])
def test_spec_names_what_is_wrong(request_, stack_id, match):
    with pytest.raises(AnsibleFilterError, match=match):
        control_server.control_server_spec(request_, stack_id, [443])


PRICES = [{"location": "fsn1", "price_hourly": {"net": "0.0060000000", "gross": "0.0071400000"}},
          {"location": "hel1", "price_hourly": {"net": "0.0050000000", "gross": "0.0059500000"}}]


def test_price_is_the_gross_hourly_price_at_the_location_in_usd():
    assert control_server.control_server_price(PRICES, "hel1", 1.08) == pytest.approx(0.005950 * 1.08)
    assert control_server.control_server_price(0.5, "anywhere", 1.1) == pytest.approx(0.55)
    with pytest.raises(AnsibleFilterError, match="no price at location 'ash'.*fsn1, hel1"):
        control_server.control_server_price(PRICES, "ash", 1.08)
    with pytest.raises(AnsibleFilterError, match="currency rate"):
        control_server.control_server_price(PRICES, "fsn1", "one")
    with pytest.raises(AnsibleFilterError, match="no hourly gross price"):
        control_server.control_server_price([{"location": "fsn1", "price_hourly": {}}], "fsn1", 1.0)


def test_price_adds_the_primary_ipv4_that_hetzner_bills_on_its_own_line():
    pricing = {"pricing": {"primary_ips": [{"type": "ipv4", "prices": [
        {"location": "hel1", "price_hourly": {"net": "0.0008", "gross": "0.000952"},
         "price_monthly": {"net": "0.5", "gross": "0.595"}}]}]}}
    assert control_server.control_server_price(PRICES, "hel1", 1.08, pricing) == pytest.approx(
        (0.005950 + 0.000952) * 1.08, abs=1e-6)
    with pytest.raises(AnsibleFilterError, match="no primary IPv4 price at location 'fsn1'"):
        control_server.control_server_price(PRICES, "fsn1", 1.08, pricing)


PLANNED = {"provider": "hetzner", "server_type": "cx22", "location": "fsn1", "usd_per_hour": 0.0095,
           "as_of": "2026-12-02"}


@pytest.mark.parametrize("planned, live, says", [
    (PLANNED, None, ""),
    (PLANNED, 0.0095, ""),
    (PLANNED, 0.0094, ""),                                   # cheaper than planned: fine
    (PLANNED, 0.0100, "now costs USD 0.010000 an hour at its provider, above the plan's USD 0.009500"),
    (None, None, "that the plan does not price: plan again with codestack_control_server set"),
    (dict(PLANNED, server_type="cx32"), None, "the plan priced a control server hetzner cx32 at fsn1"),
    (dict(PLANNED, location="nbg1"), None, "asks for hetzner cx22 at fsn1"),
])
def test_unplanned_says_why_the_server_is_not_the_one_the_plan_priced(planned, live, says):
    spec = control_server.control_server_spec({"provider": "hetzner"}, "codestack-x", [443, 8443])
    why = control_server.control_server_unplanned(spec, planned, live)
    assert (says in why) if says else why == ""


def test_unplanned_takes_a_zone_wide_catalog_price():
    spec = control_server.control_server_spec({"provider": "exoscale"}, "codestack-x", [443, 8443])
    planned = {"provider": "exoscale", "server_type": "standard.medium", "location": None, "usd_per_hour": 0.1}
    assert control_server.control_server_unplanned(spec, planned) == ""


def test_spec_exoscale_logs_in_as_debian_and_lists_the_inbound_rules():
    spec = control_server.control_server_spec({"provider": "exoscale", "public_sources": ["198.51.100.0/24"]},
                                              "s1", [443, 8443])
    assert (spec["server_type"], spec["ssh_user"]) == ("standard.medium", "debian")
    assert spec["inbound"] == [
        {"port": 22, "sources": ["0.0.0.0/0", "::/0"], "description": "SSH (Ansible)"},
        {"port": 443, "sources": ["198.51.100.0/24"], "description": "TLS (reverse proxy)"},
        {"port": 8443, "sources": ["198.51.100.0/24"], "description": "TLS (reverse proxy)"}]


CATALOG = [{"id": "exoscale:standard.small", "provider": "exoscale", "name": "standard.small", "price_per_hour": 0.02,
            "disk_price_per_gb_hour": 0.0001, "disk_size_gb": 20, "currency": "EUR"},
           {"id": "exoscale:standard.medium", "provider": "exoscale", "name": "standard.medium", "price_per_hour": 0.05,
            "disk_price_per_gb_hour": 0.0001, "disk_size_gb": 20, "currency": "EUR"}]


def test_catalog_entry_adds_the_disk_and_converts():
    entry = control_server.control_server_catalog_entry(CATALOG, "exoscale", "standard.medium", 1.2)
    assert entry["usd_per_hour"] == pytest.approx((0.05 + 0.002) * 1.2) and entry["disk_size_gb"] == 20


def test_catalog_entry_names_the_types_it_knows():
    with pytest.raises(AnsibleFilterError, match="no exoscale server type 'standard.huge' .*standard.small, standard.medium"):
        control_server.control_server_catalog_entry(CATALOG, "exoscale", "standard.huge", 1.2)


def test_the_collections_catalog_prices_every_exoscale_type():
    from ansible_collections.llmops.codestack.plugins.module_utils import _catalog  # pylint: disable=import-outside-toplevel
    catalog = _catalog.load_catalog()
    import os  # pylint: disable=import-outside-toplevel
    import yaml  # pylint: disable=import-outside-toplevel
    path = os.path.join(os.path.dirname(control_server.__file__), "..", "..", "catalog", "control_servers.yml")
    with open(path) as handle:
        entries = yaml.safe_load(handle)["control_servers"]
    assert all(e["as_of"] and e["source"] and "price_per_hour" in e["unverified"] for e in entries)
    prices = [control_server.control_server_catalog_entry(entries, "exoscale", e["name"], 1.0)["usd_per_hour"]
              for e in entries if e["provider"] == "exoscale"]
    assert prices == sorted(prices) and all(p > 0 for p in prices)
    assert "exoscale:standard.medium" in catalog.control_servers


@pytest.mark.parametrize("resources, names", [
    ([], []),
    ([{"provider": "local", "kind": "service"}], []),
    ([{"provider": "hetzner", "kind": "server"}, {"provider": "hetzner", "kind": "firewall"}],
     ["HCLOUD_TOKEN", "HCLOUD_ENDPOINT"]),
    ([{"provider": "exoscale", "kind": "server"}], ["EXOSCALE_API_KEY", "EXOSCALE_API_SECRET", "EXOSCALE_API_ENDPOINT"]),
    ([{"provider": "exoscale", "kind": "ssh_key"}], []),
])
def test_credential_names_follow_the_recorded_control_server(resources, names):
    assert control_server.control_server_credential_names({"resources": resources}) == names


@pytest.mark.parametrize("resources, action, needs", [
    ([{"provider": "hetzner", "kind": "server", "id": "1"}], "destroy",
     {"python": ["hcloud"], "collections": ["hetzner.hcloud"]}),
    ([{"provider": "exoscale", "kind": "server", "id": "i"}], "destroy", {"python": ["exoscale"], "collections": []}),
    ([{"provider": "hetzner", "kind": "server", "id": "1"}], "stop", {"python": [], "collections": []}),
    ([{"provider": "runpod", "kind": "pod", "id": "p"}], "destroy", {"python": [], "collections": []}),
])
def test_teardown_needs_are_the_created_servers_provider_libraries_in_destroy_mode(resources, action, needs):
    assert control_server.control_server_teardown_needs({"resources": resources}, action) == needs


def test_teardown_needs_reject_a_bad_action_or_state():
    with pytest.raises(AnsibleFilterError, match="stop or destroy"):
        control_server.control_server_teardown_needs({"resources": []}, "nuke")
    with pytest.raises(AnsibleFilterError, match="must be a dict"):
        control_server.control_server_teardown_needs([], "destroy")


def test_galaxy_collection_paths_take_the_first_installation_listed():
    import json  # pylint: disable=import-outside-toplevel
    results = [{"item": "hetzner.hcloud", "stdout": json.dumps({
        "/a/ansible_collections": {"hetzner.hcloud": {"version": "5.4.0"}},
        "/b/ansible_collections": {"hetzner.hcloud": {"version": "4.0.0"}}})}]
    assert control_server.galaxy_collection_paths(results) == [
        {"name": "hetzner.hcloud", "src": "/a/ansible_collections/hetzner/hcloud"}]
    with pytest.raises(AnsibleFilterError, match="has no hetzner.hcloud collection.*ansible-galaxy collection install"):
        control_server.galaxy_collection_paths([{"item": "hetzner.hcloud", "stdout": "{}"}])
    with pytest.raises(AnsibleFilterError, match="not JSON"):
        control_server.galaxy_collection_paths([{"item": "hetzner.hcloud", "stdout": "[WARNING] ..."}])


def test_python_requirements_missing_pins_what_the_host_lacks_or_has_at_another_version():
    wanted = {"hcloud": "2.27.0", "exoscale": "0.16.4"}
    assert control_server.python_requirements_missing(wanted, {"hcloud": "2.27.0", "exoscale": None}) == [
        "exoscale==0.16.4"]
    assert control_server.python_requirements_missing(wanted, {"hcloud": "2.1.0"}) == [
        "exoscale==0.16.4", "hcloud==2.27.0"]
    assert control_server.python_requirements_missing(wanted, dict(wanted)) == []
    with pytest.raises(AnsibleFilterError, match="controller's Python lacks hcloud"):
        control_server.python_requirements_missing({"hcloud": None}, {})
