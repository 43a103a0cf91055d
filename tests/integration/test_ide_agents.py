"""Other agents on the gateway, for real: Continue's CLI (``cn``, @continuedev/cli from npm) and
OpenHands' LLM settings answer through a real LiteLLM proxy with the configuration the
code_server_kilocode role writes, and the proxy's spend log records both, without the key.

The gateway is the litellm_gateway role's configuration (``litellm_config`` with its scoped-key
custom auth and its spend logger, both files copied beside config.yaml as the role does), backed by
tests/fakes/openai_backend_fake.py, whose answer names the served model it was asked for.
OpenHands cannot be installed here: its settings are exercised through the LiteLLM SDK exactly as
OpenHands' LLM class passes them (``litellm.completion(model, api_key, base_url, api_version,
custom_llm_provider, timeout, drop_params, seed, temperature, max_completion_tokens, top_p)``).
"""

import hashlib
import importlib
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
import time

import pytest
import yaml

from _ide import CACHE, CODE_SERVER_PREFIX, REPO, base_vars
from _services import free_port, start_process, stop_process, wait_http

from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config
from ansible_collections.llmops.codestack.plugins.module_utils import _spend

pytestmark = pytest.mark.integration

CONTINUE_CLI = os.path.join(CACHE, "continue-cli-1.5.47", "bin", "cn")
MASTER = "sk-master-agents-0123456789"
IDE_KEY = "ide-agents-key-0123456789abcdefghij"
BACKEND_KEY = "sk-backend-0123456789"
PLAN = os.path.join(REPO, "tests", "unit", "fixtures", "spend", "plan.json")
SERVED = {"coder-qwen2-5-coder-7b-awq-a100-80-sxm": "served-7b",
          "architect-debugger-reviewer-qwen2-5-coder-32b-fp8-h100-sxm": "served-32b"}
FILES = os.path.join(REPO, "roles", "litellm_gateway", "files")
PLAYBOOK = """
- hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - llmops.codestack.code_server_kilocode
"""


def _run_role(tmp, home, url, plan):
    """The role's Continue and OpenHands files (its preflight and ``agents`` tasks, tag agents) for
    a user whose home is ``home``."""
    variables = base_vars(home, code_server_kilocode_plan=plan, code_server_kilocode_blueprint_file="",
                          code_server_kilocode_gateway_url=url, code_server_kilocode_gateway_api_key=IDE_KEY,
                          code_server_kilocode_cli_install=False)
    (tmp / "play.yml").write_text(PLAYBOOK)
    (tmp / "vars.json").write_text(json.dumps(variables))
    proc = subprocess.run(["ansible-playbook", str(tmp / "play.yml"), "-e", "@" + str(tmp / "vars.json"),
                           "--tags", "agents"], capture_output=True, text=True, cwd=str(tmp), check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
                                   ANSIBLE_INVENTORY_UNPARSED_WARNING="False"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert IDE_KEY not in out and MASTER not in out


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """(gateway url, spend log, plan, IDE home): a real LiteLLM proxy in front of the fast fake
    backend, started while the role writes the agents' files (it only needs the URL)."""
    work = tmp_path_factory.mktemp("agents-gateway")
    home = work / "home"
    home.mkdir()
    with open(PLAN) as handle:
        plan = json.load(handle)
    backend_port, gateway_port = free_port(), free_port()
    url = "http://127.0.0.1:%d" % gateway_port
    started = time.monotonic()
    # The LiteLLM SDK (OpenHands' path) takes ~10 s to import: meanwhile, not after.
    importer = threading.Thread(target=importlib.import_module, args=("litellm",), daemon=True)
    importer.start()
    fake = start_process([sys.executable, os.path.join(REPO, "tests", "fakes", "openai_backend_fake.py"),
                          "--port", str(backend_port), "--name", "gpu", "--api-key", BACKEND_KEY],
                         str(work / "fake.log"))
    proxy = None
    try:
        endpoints = dict((name, {"api_base": "http://127.0.0.1:%d/v1" % backend_port, "model": served,
                                 "api_key": "os.environ/CODESTACK_KEY_BACKEND"})
                         for name, served in SERVED.items())
        config = litellm_config(plan, endpoints, settings={"custom_auth": "codestack_auth.user_api_key_auth",
                                                           "spend_log": True})
        (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        for name in ("codestack_auth.py", "codestack_spend.py"):
            shutil.copy(os.path.join(FILES, name), str(work / name))
        aliases = sorted(set(r["alias"] for r in plan["roles"].values()))
        (work / "scoped_keys.json").write_text(json.dumps({"keys": [
            {"name": "ide", "sha256": hashlib.sha256(IDE_KEY.encode()).hexdigest(), "models": aliases}]}))
        spend_log = work / "spend.jsonl"
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MASTER_KEY=MASTER,
                   CODESTACK_KEY_BACKEND=BACKEND_KEY, CODESTACK_SCOPED_KEYS_FILE=str(work / "scoped_keys.json"),
                   CODESTACK_SPEND_LOG=str(spend_log), NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        proxy = start_process([sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", str(work / "config.yaml"),
                               "--host", "127.0.0.1", "--port", str(gateway_port)], str(work / "proxy.log"), env=env)
        _run_role(work, home, url, plan)
        role_s = time.monotonic() - started
        wait_http(url + "/health/readiness", timeout=120, proc=proxy, log_path=str(work / "proxy.log"))
        wait_http("http://127.0.0.1:%d/v1/models" % backend_port, timeout=30, proc=fake,
                  headers={"Authorization": "Bearer " + BACKEND_KEY})
        importer.join(60)
        print("role done after %.1f s, gateway ready after %.1f s" % (role_s, time.monotonic() - started))
        yield url, spend_log, plan, home
    finally:
        stop_process(proxy)
        stop_process(fake)


@pytest.fixture(scope="module")
def gateway(stack):
    return stack[:3]


@pytest.fixture(scope="module")
def ide_home(stack):
    return stack[3]


def _spend_lines(path, count, timeout=15.0):
    """The spend log's lines once it has ``count`` (LiteLLM writes them after the answer)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_files_are_the_users_and_private(ide_home):
    for path in (ide_home / ".continue" / "config.yaml", ide_home / ".openhands" / "codestack-llm.env"):
        info = os.stat(path)
        assert stat.S_IMODE(info.st_mode) == 0o600
        assert info.st_uid == os.getuid()
        text = path.read_text()
        assert IDE_KEY in text and MASTER not in text


@pytest.mark.skipif(not os.path.exists(CONTINUE_CLI), reason="tests/setup/40-ide.sh installs @continuedev/cli")
def test_continue_cli_answers_through_the_gateway(gateway, ide_home):
    _url, spend_log, _plan = gateway
    before = len(_spend_lines(spend_log, 0, timeout=0))
    env = dict(os.environ, HOME=str(ide_home), PATH=os.path.join(CODE_SERVER_PREFIX, "node-bin") + ":" + os.environ["PATH"],
               NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    started = time.monotonic()
    proc = subprocess.run([CONTINUE_CLI, "--config", str(ide_home / ".continue" / "config.yaml"), "-p",
                           "Say hello in three words."],
                          env=env, cwd=str(ide_home), capture_output=True, text=True, timeout=120, check=False)
    took = time.monotonic() - started
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    # the default role (coder) first in config.yaml: the gateway's coder group, the 7B deployment
    assert "hello from gpu (served-7b)" in proc.stdout, proc.stdout[-2000:]
    lines = _spend_lines(spend_log, before + 1)[before:]
    assert lines, "the gateway logged nothing for Continue's request"
    assert {(line["alias"], line["key"], line["status"]) for line in lines} == {("coder", "ide", "success")}
    assert all(line["tokens_in"] > 0 and line["cost_usd"] > 0 for line in lines)
    print("cn answered in %.1f s: %r" % (took, proc.stdout.strip()[:200]))


def test_openhands_settings_through_litellm(gateway, ide_home):
    import litellm  # pylint: disable=import-outside-toplevel
    _url, spend_log, _plan = gateway
    before = len(_spend_lines(spend_log, 0, timeout=0))
    settings = dict(line.split("=", 1) for line in (ide_home / ".openhands" / "codestack-llm.env").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings["LLM_MODEL"] == "litellm_proxy/coder"
    # what OpenHands' LLM class passes to litellm.completion for these settings
    response = litellm.completion(
        model=settings["LLM_MODEL"], api_key=settings["LLM_API_KEY"], base_url=settings["LLM_BASE_URL"],
        api_version=None, custom_llm_provider=None, timeout=float(settings["LLM_TIMEOUT"]),
        drop_params=settings["LLM_DROP_PARAMS"] == "true", seed=None, temperature=0.0,
        max_completion_tokens=64, top_p=1.0,
        messages=[{"role": "system", "content": "You are OpenHands agent."},
                  {"role": "user", "content": "Say hello."}])
    assert response.choices[0].message.content == "hello from gpu (served-7b)"
    lines = _spend_lines(spend_log, before + 1)[before:]
    assert [(line["alias"], line["key"], line["status"]) for line in lines] == [("coder", "ide", "success")]


def test_the_scoped_key_cannot_leave_the_role_aliases(gateway, ide_home):
    import litellm  # pylint: disable=import-outside-toplevel
    url, _log, _plan = gateway
    # the intent group is the gateway's, not a role alias: the custom auth refuses it (403)
    with pytest.raises(Exception) as info:  # LiteLLM maps the 403 to one of its exception classes
        litellm.completion(model="litellm_proxy/intent", api_key=IDE_KEY, base_url=url, num_retries=0,
                           messages=[{"role": "user", "content": "hi"}])
    assert "key ide may call" in str(info.value) and "not intent" in str(info.value), str(info.value)


def test_the_spend_log_feeds_the_report(gateway, ide_home):
    _url, spend_log, plan = gateway
    text = spend_log.read_text()
    assert "Say hello" not in text and IDE_KEY not in text and MASTER not in text and BACKEND_KEY not in text
    assert stat.S_IMODE(os.stat(spend_log).st_mode) == 0o600
    records, skipped = _spend.parse_log(text)
    assert records and skipped == 0
    doc = _spend.report(records, plan, _spend.plan_routes(plan))
    coder = doc["summary"]["by_role"]["coder"]
    assert coder["requests"] == len([r for r in records if r["alias"] == "coder"])
    assert coder["cost_usd"] > 0 and coder["latency_p50_s"] > 0


def test_spend_report_playbook_on_the_real_log(gateway, ide_home, tmp_path):
    """playbooks/spend_report.yml: fetches the log the route stage recorded and writes the
    report (idempotence and check mode: tests/unit/plugins/action/test_spend_report.py)."""
    _url, spend_log, plan = gateway
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "plan.json").write_text(json.dumps(plan))
    (stack / "state.json").write_text(json.dumps({
        "stack_id": plan["stack_id"], "removed": [],
        "resources": [{"id": "litellm", "provider": "local", "kind": "service", "name": "LiteLLM gateway",
                       "cost_per_hour": 0.0, "attributes": {"spend_log": str(spend_log)}}]}))
    argv = ["ansible-playbook", os.path.join(REPO, "playbooks", "spend_report.yml"), "-e",
            "codestack_output=%s" % stack]
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="False",
               ANSIBLE_INVENTORY_UNPARSED_WARNING="False")
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert stat.S_IMODE(os.stat(stack / "spend.jsonl").st_mode) == 0o600
    report = json.loads((stack / "spend-report.json").read_text())
    assert report["summary"]["by_role"]["coder"]["requests"] >= 2  # Continue and OpenHands at least
    assert "<svg" in (stack / "spend-report.html").read_text()
    assert "# Spend report: demo" in (stack / "spend-report.md").read_text()
