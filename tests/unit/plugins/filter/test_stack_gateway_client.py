"""stack_gateway_client: a client on the gateway's host uses its loopback URL, anyone else the
reverse proxy's (with its CA); calibrate.yml and ide.yml choose the URL with it."""

import os

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.filter import stack

GATEWAY = {"id": "litellm", "provider": "local", "kind": "service",
           "attributes": {"url": "http://127.0.0.1:4000", "api_base": "http://127.0.0.1:4000/v1", "host": "control"}}
PROXY = {"id": "reverse-proxy", "provider": "local", "kind": "service",
         "attributes": {"host": "control", "urls": {"gateway": "https://203.0.113.10:443", "ide": "https://203.0.113.10:8443"},
                        "ca_file": "/out/stack/ca.crt"}}


def _state(*resources):
    return {"stack_id": "s", "resources": list(resources)}


def test_on_the_gateways_host_the_loopback_url():
    assert stack.stack_gateway_client(_state(GATEWAY, PROXY), "control") == {
        "url": "http://127.0.0.1:4000", "api_base": "http://127.0.0.1:4000/v1", "ca_file": "", "via": "loopback"}


def test_from_the_controller_the_proxys_url_and_ca():
    assert stack.stack_gateway_client(_state(GATEWAY, PROXY), "localhost") == {
        "url": "https://203.0.113.10:443", "api_base": "https://203.0.113.10:443/v1", "ca_file": "/out/stack/ca.crt",
        "via": "proxy"}


def test_a_remote_gateway_without_a_proxy_is_not_reachable():
    assert stack.stack_gateway_client(_state(GATEWAY), "localhost")["via"] == "none"
    other_host_proxy = dict(PROXY, attributes=dict(PROXY["attributes"], host="elsewhere"))
    assert stack.stack_gateway_client(_state(GATEWAY, other_host_proxy), "ide1")["via"] == "none"


@pytest.mark.parametrize("attributes", [{"url": "http://127.0.0.1:4000"}, {"api_base": "http://127.0.0.1:4000/v1"}])
def test_a_gateway_on_the_controller_as_older_records_have_it(attributes):
    gateway = dict(GATEWAY, attributes=attributes)
    assert stack.stack_gateway_client(_state(gateway), "localhost") == {
        "url": "http://127.0.0.1:4000", "api_base": "http://127.0.0.1:4000/v1", "ca_file": "", "via": "loopback"}


def test_no_gateway_recorded():
    assert stack.stack_gateway_client(_state(), "localhost") == {"url": "", "api_base": "", "ca_file": "", "via": "none"}


def test_calibrate_asks_the_filter_for_the_controllers_url_and_trusts_its_ca():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "..", "..", "playbooks", "calibrate.yml")) as handle:
        text = handle.read()
    yaml.safe_load(text)
    assert "stack_gateway_client('localhost')" in text and "ca_path: \"{{ _calibrate_ca_file" in text
