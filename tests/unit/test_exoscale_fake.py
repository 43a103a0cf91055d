"""Exoscale's own SDK against the Exoscale fake, through module_utils/_exoscale.py.

The SDK (``exoscale.api.v2.Client(key, secret, url=<fake>)``) signs every request with
EXO2-HMAC-SHA256; the fake checks the signature, answers writes with pending operations and
errors with ``{"message"}``. ``ExoscaleControl`` creates the key, the security group (ingress
rules exactly those asked) and the labelled instance, finds them again, retries 429/5xx and
names every API error; the fake bills the instance per second at the catalog's price.
"""

import os
import subprocess
import sys

import pytest
import yaml

exoscale_v2 = pytest.importorskip("exoscale.api.v2")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))

from exoscale_fake import DEFAULTS, ExoscaleFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.module_utils import _exoscale  # noqa: E402

LABELS = {"codestack-stack": "s1"}
RULES = [{"port": 22, "sources": ["0.0.0.0/0", "::/0"], "description": "SSH"},
         {"port": 443, "sources": ["198.51.100.0/24"], "description": "TLS"}]


@pytest.fixture
def fake():
    with ExoscaleFake(operation_delay=0.05, running_delay=0.1) as running:
        yield running


@pytest.fixture
def client(fake):
    return exoscale_v2.Client(DEFAULTS["api_key"], DEFAULTS["api_secret"], url=fake.url)


@pytest.fixture
def control(client):
    sleeps = []
    ctl = _exoscale.ExoscaleControl(client, poll=0.05, backoff=0.01, sleep=lambda s: sleeps.append(s) or None)
    ctl.sleeps = sleeps
    return ctl


@pytest.fixture
def public_key(tmp_path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    return (tmp_path / "k.pub").read_text().strip()


def _real_sleep_control(client):
    import time  # pylint: disable=import-outside-toplevel
    return _exoscale.ExoscaleControl(client, poll=0.05, backoff=0.01, sleep=time.sleep)


def test_sdk_reaches_the_fake_through_its_url_option_only(fake, client):
    assert client.endpoint == fake.url
    assert client.list_instances() == {"instances": []}
    assert fake.snapshot()["counters"]["forbidden"] == 0


@pytest.mark.parametrize("key, secret, why", [
    ("EXOwrong", DEFAULTS["api_secret"], "invalid API key"),
    (DEFAULTS["api_key"], "not-the-secret", "invalid request signature"),
])
def test_a_bad_key_or_signature_is_refused_with_403(fake, key, secret, why):
    bad = exoscale_v2.Client(key, secret, url=fake.url)
    with pytest.raises(Exception) as caught:
        bad.list_instance_types()
    assert caught.value.response.status_code == 403 and caught.value.response.json() == {"message": why}
    control = _exoscale.ExoscaleControl(bad, retries=0)
    with pytest.raises(_exoscale.ExoscaleError) as named:
        control.find_key("x")
    assert "HTTP 403" in str(named.value) and "EXOSCALE_API_KEY" in str(named.value)
    assert DEFAULTS["api_secret"] not in str(named.value) and "not-the-secret" not in str(named.value)


def test_a_signed_query_argument_counts_in_the_signature(fake, client):
    assert fake.check_signature("GET", "/v2/template", "visibility=public", b"", "EXO2-HMAC-SHA256 credential="
                                + DEFAULTS["api_key"] + ",expires=1,signature=x") == "request expired"
    assert client.list_templates(visibility="public")["templates"]


def test_create_find_and_remove_the_control_server(fake, client, public_key):
    control = _real_sleep_control(client)
    changed, key = control.ensure_key("s1-control", public_key)
    assert changed and key["fingerprint"]
    changed, group = control.ensure_group("s1-control", RULES)
    assert changed
    assert sorted((r["start-port"], r["network"]) for r in group["rules"]) == [
        (22, "0.0.0.0/0"), (22, "::/0"), (443, "198.51.100.0/24")]
    assert {r["flow-direction"] for r in group["rules"]} == {"ingress"}
    instance = control.create_instance("s1-control", LABELS, "standard.medium", "Linux Debian 12 (Bookworm) 64-bit",
                                       20, "s1-control", group["id"], 30)
    assert instance["state"] == "starting" and instance["labels"] == LABELS
    running = control.wait_running(instance, 30)
    assert (running["state"], running["public-ip"]) == ("running", "127.0.0.1")
    assert running["ssh-keys"] == [{"name": "s1-control"}] and running["security-groups"] == [{"id": group["id"]}]

    # Found again: nothing changes.
    assert control.ensure_key("s1-control", public_key)[0] is False
    assert control.ensure_group("s1-control", RULES)[0] is False
    assert control.find_instance("s1-control", LABELS)["id"] == running["id"]
    assert control.labelled_instances({"codestack-stack": "other"}) == []

    # A rule that is not asked for goes, a missing one comes.
    changed, group = control.ensure_group("s1-control", RULES[:1])
    assert changed and sorted(r["start-port"] for r in group["rules"]) == [22, 22]

    # The group is in use while the instance exists.
    with pytest.raises(_exoscale.ExoscaleError) as in_use:
        control.delete("security_group", group["id"])
    assert "HTTP 409" in str(in_use.value) and "in use" in str(in_use.value)
    assert control.delete("instance", running["id"]) is True
    assert control.delete("security_group", group["id"]) is True
    assert control.delete("ssh_key", "s1-control") is True
    assert control.delete("instance", running["id"]) is False
    live = fake.snapshot()
    assert (live["instances"], live["security_groups"], live["ssh_keys"]) == ([], [], [])
    assert live["deleted"] == {"instances": [running["id"]], "security_groups": [group["id"]],
                               "ssh_keys": ["s1-control"]}


def test_the_fake_bills_per_second_at_the_catalog_price(fake, client, public_key):
    control = _real_sleep_control(client)
    control.ensure_key("k", public_key)
    _changed, group = control.ensure_group("g", RULES)
    instance = control.create_instance("i", LABELS, "standard.small", "Linux Debian 12 (Bookworm) 64-bit", 20, "k",
                                       group["id"], 30)
    control.delete("instance", instance["id"])
    with open(os.path.join(REPO, "catalog", "control_servers.yml")) as handle:
        small = next(t for t in yaml.safe_load(handle)["control_servers"] if t["id"] == "exoscale:standard.small")
    with open(os.path.join(REPO, "catalog", "cost-model.yml")) as handle:
        rate = next(c["usd_per_unit"] for c in yaml.safe_load(handle)["currencies"] if c["id"] == "EUR")
    (line,) = fake.snapshot()["ledger"]["lines"]
    assert line["usd_per_hour"] == pytest.approx((small["price_per_hour"] + 20 * small["disk_price_per_gb_hour"]) * rate)
    assert 0 < line["seconds"] < 30 and line["usd"] > 0


def test_429_and_503_are_retried_with_backoff_then_succeed(fake, control):
    fake.configure(fail_next=[{"status": 429, "retry_after": 0}, {"status": 503}])
    assert control.find_key("none") is None
    assert control.attempts == 3 and len(control.sleeps) == 2
    assert fake.snapshot()["counters"]["injected"] == {"429": 1, "503": 1}


def test_a_500_on_a_create_is_not_retried(fake, control, public_key):
    # The lookup before the create gets the 500 and is retried; then the key is registered.
    fake.configure(fail_next=[{"status": 500}])
    assert control.ensure_key("k", public_key)[0] is True and fake.snapshot()["counters"]["injected"] == {"500": 1}
    # A 500 on the create itself: sent once (a retried 500 could make a second resource).
    control.attempts = 0
    fake.configure(fail_next=[{"status": 500}])
    with pytest.raises(_exoscale.ExoscaleError) as caught:
        control.call("register SSH key k2", "register_ssh_key", retry=_exoscale.RETRY_CREATE, name="k2",
                     public_key=public_key)
    assert str(caught.value) == "Exoscale: cannot register SSH key k2: HTTP 500: Service unavailable"
    assert control.attempts == 1 and [k["name"] for k in fake.snapshot()["ssh_keys"]] == ["k"]


def test_retries_run_out_with_the_api_message(fake, control):
    control.retries = 2
    fake.configure(fail_next=[{"status": 502}] * 3)
    with pytest.raises(_exoscale.ExoscaleError) as caught:
        control.labelled_instances(LABELS)
    assert str(caught.value) == "Exoscale: cannot list the instances: HTTP 502: Service unavailable"


def test_api_errors_name_what_was_done(control):
    with pytest.raises(_exoscale.ExoscaleError) as caught:
        control.instance_type("standard.giant")
    assert "no instance type 'standard.giant'" in str(caught.value) and "standard.medium" in str(caught.value)
    with pytest.raises(_exoscale.ExoscaleError) as caught:
        control.template("Windows 95")
    assert "no public template named 'Windows 95'" in str(caught.value)
    with pytest.raises(_exoscale.ExoscaleError) as caught:
        control.call("create an instance", "create_instance", retry=_exoscale.RETRY_CREATE, name="x")
    assert "HTTP 400" in str(caught.value) and "missing instance-type, template, disk-size" in str(caught.value)


def test_a_failed_or_endless_operation_is_named():
    control = _exoscale.ExoscaleControl(client=None, poll=1.0, sleep=lambda s: None, clock=iter(range(0, 100, 5)).__next__)
    with pytest.raises(_exoscale.ExoscaleError) as failed:
        control.wait_operation({"id": "op1", "state": "failure", "reason": "unavailable", "message": "no capacity"},
                               "create instance x", 60)
    assert str(failed.value) == ("Exoscale: cannot create instance x: the operation op1 ended in failure "
                                 "(unavailable: no capacity)")
    with pytest.raises(_exoscale.ExoscaleError) as endless:
        control.wait_operation({"id": "op2", "state": "pending"}, "create instance x", 2)
    assert "still pending" in str(endless.value)


def test_rules_become_one_ingress_rule_per_network():
    assert _exoscale.wanted_rules([{"port": 22, "sources": ["0.0.0.0/0", "::/0"]}]) == [
        {"flow-direction": "ingress", "protocol": "tcp", "start-port": 22, "end-port": 22, "network": "0.0.0.0/0",
         "description": ""},
        {"flow-direction": "ingress", "protocol": "tcp", "start-port": 22, "end-port": 22, "network": "::/0",
         "description": ""}]
