"""code_server_kilocode's configuration on localhost: check mode, idempotence, both KiloCode
formats, the plan as input, and the refusals. Only the ``configure`` tag runs (no code-server
needed); the slow tier and Molecule cover install and run."""

import os
import stat

import pytest
import yaml

from _ide import ALIASES, FIXTURES, apply_role, base_vars, changed_count, read_jsonc

pytestmark = pytest.mark.integration

PLAN_ALIASES = {"architect": "plan-arch", "coder": "plan-coder", "debugger": "plan-coder",
                "reviewer": "plan-review"}


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def _plan():
    with open(os.path.join(FIXTURES, "blueprint-ide.yml")) as handle:
        blueprint = yaml.safe_load(handle)
    return {"schema_version": 1, "blueprint": blueprint,
            "roles": {role: {"alias": alias, "deployment": "local"}
                      for role, alias in PLAN_ALIASES.items()},
            # The window the local engine is started with: each alias declares it.
            "deployments": [{"name": "local", "provider": "local", "serving": {"max_model_len": 8192}}]}


def test_kilo7_check_mode_then_apply_then_nothing_to_do(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    variables = base_vars(home, code_server_kilocode_extension_version="7.7.7",
                          code_server_kilocode_plan=_plan(),
                          code_server_kilocode_blueprint_file="",
                          code_server_kilocode_gateway_url="http://gw.internal:4000/",
                          code_server_kilocode_model_limits={"plan-review": {"output": 1000}})
    kilo = home / ".config" / "kilo" / "kilo.jsonc"

    rc, out, login = apply_role(tmp_path, variables, tags="configure", check=True, name="check")
    assert rc == 0, out[-3000:]
    assert changed_count(out) > 0
    assert not kilo.exists()
    assert login["password"] is None  # nothing stored in check mode, so nothing to show

    rc, out, login = apply_role(tmp_path, variables, tags="configure", name="apply")
    assert rc == 0, out[-3000:]
    assert changed_count(out) > 0
    assert login["config_format"] == "kilo7"
    assert login["password_generated"] is True and len(login["password"]) == 24
    config_yaml = home / ".config" / "code-server" / "config.yaml"
    stored = yaml.safe_load(config_yaml.read_text())
    assert stored["password"] == login["password"]
    assert stored["bind-addr"] == "127.0.0.1:8080" and stored["auth"] == "password"
    assert _mode(config_yaml) == 0o600
    assert login["password"] not in out  # never printed

    config = read_jsonc(kilo)
    provider = config["provider"]["litellm"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"]["baseURL"] == "http://gw.internal:4000/v1"
    assert set(provider["models"]) == set(PLAN_ALIASES.values())  # plan-coder once
    # Each model declares the window its deployment serves and an output cap (a quarter of it,
    # or what code_server_kilocode_model_limits says): Kilo then asks for that, not 32000.
    assert {alias: model["limit"] for alias, model in provider["models"].items()} == {
        "plan-arch": {"context": 8192, "output": 2048}, "plan-coder": {"context": 8192, "output": 2048},
        "plan-review": {"context": 8192, "output": 1000}}
    for role, alias in PLAN_ALIASES.items():
        assert config["agent"][role]["model"] == "litellm/" + alias
        assert "CODESTACK-PROMPT-%s" % role.upper() in config["agent"][role]["prompt"]
    assert config["agent"]["reviewer"]["permission"]["edit"] == "deny"
    # A top-level bash permission: Kilo 7.x then has nothing to migrate and leaves the file alone.
    assert config["permission"] == {"bash": "ask"}
    assert config["model"] == "litellm/plan-coder"
    assert _mode(kilo) == 0o600
    key = home / ".config" / "kilo" / "litellm.key"
    assert key.read_text() == "sk-test-gateway-key" and _mode(key) == 0o600
    assert "sk-test-gateway-key" not in kilo.read_text()
    assert "sk-test-gateway-key" not in out

    # Continue: one model per role through the gateway, default role first; OpenHands: LLM_*
    continue_file = home / ".continue" / "config.yaml"
    cont = yaml.safe_load(continue_file.read_text())
    assert cont["schema"] == "v1" and cont["version"] == "1.0.0"
    assert [m["model"] for m in cont["models"]] == ["plan-coder", "plan-arch", "plan-coder", "plan-review"]
    for model in cont["models"]:
        assert model["provider"] == "openai" and model["apiBase"] == "http://gw.internal:4000/v1"
        assert model["apiKey"] == "sk-test-gateway-key" and "chat" in model["roles"]
        assert model["defaultCompletionOptions"] == {
            "contextLength": 8192, "maxTokens": 1000 if model["model"] == "plan-review" else 2048}
    assert "CODESTACK-PROMPT-REVIEWER" in cont["models"][3]["chatOptions"]["baseSystemMessage"]
    assert _mode(continue_file) == 0o600 and _mode(home / ".continue") == 0o700
    openhands_file = home / ".openhands" / "codestack-llm.env"
    settings = dict(line.split("=", 1) for line in openhands_file.read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings["LLM_MODEL"] == "litellm_proxy/plan-coder"
    assert settings["LLM_BASE_URL"] == "http://gw.internal:4000"
    assert settings["LLM_API_KEY"] == "sk-test-gateway-key"
    assert _mode(openhands_file) == 0o600
    assert login["continue_config"] == str(continue_file) and login["openhands_env"] == str(openhands_file)

    brief = (home / "workspace" / "BRIEF.md").read_text()
    assert "# Project brief: todo-api" in brief and "`plan-review`" in brief
    assert yaml.safe_load((home / "workspace" / "blueprint.yml").read_text())["project"]["name"] == "todo-api"

    rc, out, login = apply_role(tmp_path, variables, tags="configure", name="repeat")
    assert rc == 0, out[-3000:]
    assert changed_count(out) == 0, out[-3000:]
    assert login["password"] is None and login["password_generated"] is False
    assert yaml.safe_load(config_yaml.read_text())["password"] == stored["password"]


def test_legacy_format_chosen_by_extension_version(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    settings = home / ".local" / "share" / "code-server" / "User" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text('{"editor.fontSize": 15}')
    # Without a plan, the limits come from code_server_kilocode_model_limits alone.
    variables = base_vars(home, code_server_kilocode_extension_version="4.98.0",
                          code_server_kilocode_model_limits={
                              alias: {"context": 16384, "output": 512} if role == "reviewer" else {"context": 16384}
                              for role, alias in ALIASES.items()})

    rc, out, login = apply_role(tmp_path, variables, tags="configure")
    assert rc == 0, out[-3000:]
    assert login["config_format"] == "legacy"
    assert not (home / ".config" / "kilo" / "kilo.jsonc").exists()

    user_settings = read_jsonc(settings)
    assert user_settings["editor.fontSize"] == 15  # the user's own settings survive
    assert user_settings["extensions.autoUpdate"] is False
    import_file = user_settings["kilo-code.autoImportSettingsPath"]
    assert _mode(import_file) == 0o600
    imported = read_jsonc(import_file)
    profiles = imported["providerProfiles"]
    assert profiles["currentApiConfigName"] == "codestack-coder"
    for role, alias in ALIASES.items():
        api = profiles["apiConfigs"]["codestack-" + role]
        assert api["apiProvider"] == "openai"
        assert api["openAiBaseUrl"] == "http://127.0.0.1:4000/v1"
        assert api["openAiModelId"] == alias
        assert api["openAiApiKey"] == "sk-test-gateway-key"
        assert api["openAiCustomModelInfo"]["contextWindow"] == 16384
        assert api["openAiCustomModelInfo"]["maxTokens"] == (512 if role == "reviewer" else 4096)
        assert profiles["modeApiConfigs"][role] == "codestack-" + role

    modes = yaml.safe_load((home / "workspace" / ".kilocodemodes").read_text())["customModes"]
    assert [m["slug"] for m in modes] == ["architect", "coder", "debugger", "reviewer"]
    for mode in modes:
        assert "CODESTACK-PROMPT-%s" % mode["slug"].upper() in mode["roleDefinition"]
    assert [m for m in modes if m["slug"] == "reviewer"][0]["groups"] == ["read"]
    assert "sk-test-gateway-key" not in out

    rc, out, _login = apply_role(tmp_path, variables, tags="configure", name="repeat")
    assert rc == 0 and changed_count(out) == 0, out[-3000:]


@pytest.mark.parametrize("overrides, message", [
    ({"code_server_kilocode_bind_address": "0.0.0.0"}, "refusing to bind code-server to 0.0.0.0"),
    ({"code_server_kilocode_bind_address": "0.0.0.0", "code_server_kilocode_auth": "none",
      "code_server_kilocode_tls": "self_signed"}, "refusing to bind code-server to 0.0.0.0"),
    ({"code_server_kilocode_tls": "cert"}, "tls=cert needs code_server_kilocode_tls_cert"),
    ({"code_server_kilocode_gateway_api_key": ""}, "code_server_kilocode_gateway_api_key is empty"),
    ({"code_server_kilocode_prompts_dir": "/nonexistent"}, "missing system prompt(s) /nonexistent/architect.md"),
    ({"code_server_kilocode_model_limits": {"coder-alias": {"context": 1000, "output": 1000}}},
     "the output of coder-alias (1000) must be smaller than its context (1000)"),
])
def test_bad_input_fails_before_anything_is_written(tmp_path, overrides, message):
    home = tmp_path / "home"
    home.mkdir()
    rc, out, _login = apply_role(tmp_path, base_vars(home, **overrides))
    assert rc != 0
    assert message in out
    assert list(home.iterdir()) == []


def test_public_bind_with_tls_is_accepted(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    variables = base_vars(home, code_server_kilocode_bind_address="0.0.0.0",
                          code_server_kilocode_tls="self_signed", code_server_kilocode_port=8443)
    rc, out, login = apply_role(tmp_path, variables, tags="configure")
    assert rc == 0, out[-3000:]
    assert login["url"] == "https://127.0.0.1:8443/"
    stored = yaml.safe_load((home / ".config" / "code-server" / "config.yaml").read_text())
    assert stored["bind-addr"] == "0.0.0.0:8443" and stored["cert"] is True
