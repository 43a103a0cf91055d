"""Static checks of roles/vllm_server: argument specs in sync with defaults, house layout."""

import os

import pytest
import yaml

ROLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "vllm_server")


def _load(*parts):
    with open(os.path.join(ROLE, *parts)) as handle:
        return yaml.safe_load(handle)


SPEC = _load("meta", "argument_specs.yml")["argument_specs"]["main"]["options"]
DEFAULTS = _load("defaults", "main.yml")


def test_every_default_is_documented_with_the_same_value():
    assert set(DEFAULTS) <= set(SPEC), set(DEFAULTS) - set(SPEC)
    for name, value in DEFAULTS.items():
        assert SPEC[name].get("default") == value, name


def test_every_option_has_a_default_or_is_required():
    for name, spec in SPEC.items():
        assert spec.get("required") or name in DEFAULTS, name
        assert not (spec.get("required") and name in DEFAULTS), name
        assert name.startswith("vllm_server_")
        assert spec.get("description")


def test_choices_contain_the_default():
    for name, spec in SPEC.items():
        if "choices" in spec and name in DEFAULTS:
            assert DEFAULTS[name] in spec["choices"], name


def test_secrets_are_no_log():
    for name in ("vllm_server_api_key", "vllm_server_hf_token"):
        assert SPEC[name]["no_log"] is True


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROLE, "templates"))))
def test_templates_start_with_ansible_managed(name):
    with open(os.path.join(ROLE, "templates", name)) as handle:
        assert handle.readline().strip() == "{{ ansible_managed | comment }}"


def test_handlers_listen_and_skip_in_check_mode():
    for handler in _load("handlers", "main.yml"):
        assert handler["listen"].startswith("vllm_server ")
        assert handler["when"] == "not ansible_check_mode"


def test_main_reads_preflight_install_configure_run():
    tasks = _load("tasks", "main.yml")
    files = [t.get("ansible.builtin.import_tasks") or t["ansible.builtin.include_tasks"]["file"] for t in tasks]
    assert files[:4] == ["preflight.yml", "install.yml", "configure.yml", "run.yml"]
    for task in tasks:
        assert "vllm_server" in task["tags"]
        # An included target's tasks carry the role's tags too (--tags vllm_server_install works).
        if "ansible.builtin.include_tasks" in task:
            assert task["ansible.builtin.include_tasks"]["apply"]["tags"] == task["tags"]
            assert task["when"].startswith("vllm_server_target == ")
