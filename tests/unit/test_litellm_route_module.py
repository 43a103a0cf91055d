"""litellm_route: pure helpers and the module with its config backend (no processes)."""

import json
import os
import stat

import pytest
import yaml

from ansible.module_utils.testing import patch_module_args

from ansible_collections.llmops.codestack.plugins.module_utils import _litellm
from ansible_collections.llmops.codestack.plugins.modules import litellm_route

SECRET = "sk-backend-secret-123"


class Exit(Exception):
    pass


def run(args, check=False, diff=False):
    """Run the module in-process; returns (result dict, failed)."""
    args = dict(args)
    if check:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    captured = {}

    def exit_json(self, **kw):
        captured.update(kw)
        raise Exit()

    def fail_json(self, **kw):
        captured.update(kw, failed=True)
        raise Exit()

    with patch_module_args(args), \
            pytest.MonkeyPatch.context() as mp:
        mp.setattr(litellm_route.AnsibleModule, "exit_json", exit_json)
        mp.setattr(litellm_route.AnsibleModule, "fail_json", fail_json)
        with pytest.raises(Exit):
            litellm_route.main()
    return captured


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({
        "model_list": [{"model_name": "architect",
                        "litellm_params": {"model": "openai/architect", "api_base": "http://a/v1"}}],
        "litellm_settings": {"callbacks": ["prometheus"]},
    }))
    os.chmod(path, 0o640)
    return path


def route_args(config, **kw):
    args = {"config_path": str(config), "model_name": "coder", "model": "openai/coder",
            "api_base": "http://127.0.0.1:9/v1", "backend_api_key": SECRET, "rpm": 60,
            "tags": ["local", "cpu"]}
    args.update(kw)
    return args


@pytest.mark.parametrize("route,name,model,rid,expected", [
    ({"model_name": "coder", "litellm_params": {"model": "m"}}, "coder", None, None, True),
    ({"model_name": "coder", "litellm_params": {"model": "m"}}, "coder", "m", None, True),
    ({"model_name": "coder", "litellm_params": {"model": "m"}}, "coder", "x", None, False),
    ({"model_name": "coder", "litellm_params": {"model": "m"}}, "other", "m", None, False),
    ({"model_name": "c", "litellm_params": {}, "model_info": {"id": "i"}}, "z", "x", "i", True),
    ({"model_name": "c", "litellm_params": {}, "model_info": {"id": "i"}}, "c", None, "j", False),
])
def test_matches(route, name, model, rid, expected):
    assert _litellm.matches(route, name, model, rid) is expected


@pytest.mark.parametrize("current,wanted,secrets,expected", [
    ({"rpm": 1}, {"rpm": 1}, True, []),
    ({"rpm": 1}, {"rpm": 2}, True, ["rpm"]),
    ({"tags": ["a", "b"]}, {"tags": ["b", "a"]}, True, []),
    ({"input_cost_per_second": 0.1 + 0.2}, {"input_cost_per_second": 0.3}, True, []),
    ({"api_key": "a"}, {"api_key": "b"}, True, ["api_key"]),
    ({}, {"api_key": "b"}, False, []),
    ({}, {"model": "m", "rpm": 3}, True, ["model", "rpm"]),
])
def test_differences(current, wanted, secrets, expected):
    assert _litellm.differences({"litellm_params": current}, wanted, secrets) == expected


def test_redact_masks_the_key_and_leaves_the_input_alone():
    route = {"model_name": "c", "litellm_params": {"model": "m", "api_key": SECRET}}
    out = _litellm.redact(route)
    assert out["litellm_params"]["api_key"] == _litellm.MASK
    assert route["litellm_params"]["api_key"] == SECRET


def test_create_check_real_repeat(config):
    res = run(route_args(config), check=True, diff=True)
    assert res["changed"] and "coder" not in config.read_text()
    assert SECRET not in json.dumps(res)

    res = run(route_args(config), diff=True)
    assert res["changed"]
    assert res["changed_fields"] == ["api_base", "api_key", "model", "rpm", "tags"]
    assert res["diff"]["before"] == {}
    assert res["diff"]["after"]["api_key"] == "******** (changed)"
    assert SECRET not in json.dumps(res)
    doc = yaml.safe_load(config.read_text())
    coder = [r for r in doc["model_list"] if r["model_name"] == "coder"][0]
    assert coder["litellm_params"]["api_key"] == SECRET
    assert doc["litellm_settings"] == {"callbacks": ["prometheus"]}
    assert stat.S_IMODE(os.stat(config).st_mode) == 0o640

    mtime = os.stat(config).st_mtime_ns
    res = run(route_args(config), diff=True)
    assert not res["changed"] and res["changed_fields"] == []
    assert os.stat(config).st_mtime_ns == mtime


def test_update_only_the_fields_that_differ(config):
    run(route_args(config))
    res = run(route_args(config, rpm=120), check=True, diff=True)
    assert res["changed"] and res["changed_fields"] == ["rpm"]
    assert res["diff"]["before"]["rpm"] == 60 and res["diff"]["after"]["rpm"] == 120
    assert "rpm: 60" in config.read_text()
    res = run(route_args(config, rpm=120, backend_api_key="sk-new-one"), diff=True)
    assert res["changed_fields"] == ["api_key", "rpm"]
    assert "sk-new-one" not in json.dumps(res)
    assert run(route_args(config, rpm=120, backend_api_key="sk-new-one"))["changed"] is False


def test_delete_check_real_repeat(config):
    run(route_args(config))
    absent = {"config_path": str(config), "model_name": "coder", "state": "absent"}
    res = run(absent, check=True, diff=True)
    assert res["changed"] and res["deleted"] == 1 and "coder" in config.read_text()
    assert res["diff"]["after"] == {}
    res = run(absent)
    assert res["changed"] and "model_name: coder" not in config.read_text()
    assert "architect" in config.read_text()
    assert run(absent)["changed"] is False


def test_several_matches_need_an_id(config):
    run(route_args(config, id="one"))
    run(route_args(config, id="two", api_base="http://127.0.0.1:10/v1"))
    res = run(route_args(config))
    assert res.get("failed") and "set id" in res["msg"]
    res = run(route_args(config, id="two", api_base="http://127.0.0.1:10/v1", rpm=5))
    assert res["changed_fields"] == ["rpm"]


def test_missing_config_is_one_clear_error(tmp_path):
    res = run(route_args(tmp_path / "nope.yaml"))
    assert res.get("failed") and "does not exist" in res["msg"]


def test_api_backend_needs_the_master_key(monkeypatch):
    monkeypatch.delenv("LITELLM_MASTER_KEY", raising=False)
    res = run({"backend": "api", "model_name": "coder", "model": "openai/coder"})
    assert res.get("failed") and "master key" in res["msg"]
