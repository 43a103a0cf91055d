"""End to end on the embedded default: site.yml builds the whole stack on this machine.

Plan -> llama.cpp (SmolLM2) -> LiteLLM gateway (one alias per role) -> code-server with the
KiloCode configuration and the Kilo CLI; every alias answers through the gateway, the IDE serves
its login page, the real Kilo CLI gets an answer from its agent through the stack exactly as
site.yml deployed it, and a second run changes nothing. The extension gallery is unreachable
here, as on an offline machine: the run warns once and goes on. Ports and directories are
private to the test.
"""

import json
import os
import socket
import subprocess
import time
import urllib.request

import pytest

from _ide import read_jsonc
from _services import free_port, strategy_env

pytestmark = [pytest.mark.slow, pytest.mark.integration]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
USER = "codestack-e2e"
ARTIFACTS = os.path.join(REPO, "tests", "output", "artifacts")


def _play(extra_vars, out, env=None, log="site.log"):
    proc = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "site.yml"), "-e", json.dumps(extra_vars)],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", **(env or {})),
        capture_output=True, text=True, timeout=1500, check=False)
    (out / log).write_text(proc.stdout + proc.stderr)
    assert proc.returncode == 0, (proc.stdout[-6000:] + proc.stderr[-3000:])
    result = json.loads(proc.stdout)
    result["stderr"] = proc.stderr
    return result


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    ports = {"llama": free_port(), "gateway": free_port(), "ide": free_port()}
    extra = {
        "codestack_output": str(out / "stack"),
        "llamacpp_server_port": ports["llama"], "llamacpp_server_dir": str(out / "llama"),
        "llamacpp_server_name": "llama-e2e",
        "litellm_gateway_port": ports["gateway"], "litellm_gateway_dir": str(out / "litellm"),
        "code_server_kilocode_port": ports["ide"], "code_server_kilocode_user": USER,
        "code_server_kilocode_service_name": "code-server-e2e",
    }
    try:
        first = _play(extra, out)
        yield {"out": out, "ports": ports, "first": first, "extra": extra}
    finally:
        for ctl in (out / "llama" / "ctl.sh", out / "litellm" / "ctl.sh"):
            if ctl.exists():
                subprocess.run([str(ctl), "stop"], check=False, capture_output=True, timeout=60)
        pidfile = "/home/%s/.local/state/code-server-kilocode/supervisor.pid" % USER
        subprocess.run(["start-stop-daemon", "--stop", "--oknodo", "--retry", "10", "--pidfile", pidfile],
                       check=False, capture_output=True, timeout=60)


def _stats(result):
    return result["stats"]["localhost"]


def test_first_run_builds_every_stage(stack):
    assert _stats(stack["first"])["failures"] == 0
    plan = json.loads((stack["out"] / "stack" / "plan.json").read_text())
    assert {d["provider"] for d in plan["deployments"]} == {"local"}
    assert (stack["out"] / "stack" / "report.md").exists()
    state = json.loads((stack["out"] / "stack" / "state.json").read_text())
    assert {r["id"] for r in state["resources"]} == {"llamacpp", "litellm", "code-server"}
    assert oct((stack["out"] / "stack" / "state.json").stat().st_mode & 0o777) == "0o600"
    # No GPU rented: no budget guard, no key for rented model servers.
    assert not (stack["out"] / "stack" / "budget-guard").exists()


def test_calibration_compares_the_planner_with_the_local_engine(stack):
    calibration = json.loads((stack["out"] / "stack" / "calibration.json").read_text())
    routes = calibration["calibration"]
    assert {r["alias"] for r in routes} >= {"architect", "coder", "debugger", "reviewer"}
    for route in routes:
        assert route["measured"]["tok_s"] > 0 and route["measured"]["ttft_s"] > 0, route
        assert route["predicted"]["tok_s"] > 0, route
    assert "Predicted vs measured" in (stack["out"] / "stack" / "calibration.md").read_text()


def test_every_role_alias_answers_through_the_gateway(stack):
    key = (stack["out"] / "litellm" / "master_key").read_text().strip()
    for alias in ("architect", "coder", "debugger", "reviewer", "intent"):
        body = json.dumps({"model": alias, "max_tokens": 8,
                           "messages": [{"role": "user", "content": "hi"}]}).encode()
        req = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % stack["ports"]["gateway"],
                                     data=body, headers={"Authorization": "Bearer " + key,
                                                         "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            answer = json.load(resp)
        assert answer["choices"][0]["message"]["content"] is not None, alias


def test_ide_serves_login_and_knows_the_gateway(stack):
    with urllib.request.urlopen("http://127.0.0.1:%d/login" % stack["ports"]["ide"], timeout=30) as resp:
        assert resp.status == 200 and b"password" in resp.read().lower()
    kilo = "/home/%s/.config/kilo/kilo.jsonc" % USER
    text = open(kilo).read()
    assert "127.0.0.1:%d" % stack["ports"]["gateway"] in text
    for alias in ("architect", "coder", "debugger", "reviewer"):
        assert alias in text
    assert oct(os.stat(kilo).st_mode & 0o777) == "0o600"
    # Each model declares the window the plan serves it with, so Kilo asks for a quarter of it
    # as output instead of its own 32000.
    plan = json.loads((stack["out"] / "stack" / "plan.json").read_text())
    served = {d["serving"]["max_model_len"] for d in plan["deployments"]}
    assert len(served) == 1
    models = read_jsonc(kilo)["provider"]["litellm"]["models"]
    assert {alias: model["limit"] for alias, model in models.items()} == {
        alias: {"context": min(served), "output": min(served) // 4} for alias in models}
    # ... which is the window llama.cpp runs with.
    engine = json.loads(open("/var/lib/codestack/%s/llamacpp/config.json" % plan["stack_id"]).read())
    assert {model["n_ctx"] for model in engine["models"]} == served


def test_ide_has_its_scoped_key_never_the_master_key(stack):
    ide_key = (stack["out"] / "stack" / "ide_key").read_text().strip()
    master = (stack["out"] / "litellm" / "master_key").read_text().strip()
    given = open("/home/%s/.config/kilo/litellm.key" % USER).read().strip()
    assert given == ide_key and given != master
    state = json.loads((stack["out"] / "stack" / "state.json").read_text())
    gateway = [r for r in state["resources"] if r["id"] == "litellm"][0]["attributes"]
    assert gateway["ide_key_file"] == str(stack["out"] / "stack" / "ide_key")


def _stage(name, extra_vars, args=()):
    return subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", name + ".yml"), "-e", json.dumps(extra_vars)] + list(args),
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, timeout=900, check=False)


def test_stages_at_vvv_print_no_key(stack):
    """serve, route and IDE alone at -vvv: the output holds none of the stack's keys."""
    keys = {"engine": (stack["out"] / "llama" / "api_key").read_text().strip(),
            "master": (stack["out"] / "litellm" / "master_key").read_text().strip(),
            "ide": (stack["out"] / "stack" / "ide_key").read_text().strip()}
    for name in ("serve", "route", "ide"):
        proc = _stage(name, stack["extra"], ["-vvv"])
        (stack["out"] / ("%s-vvv.log" % name)).write_text(proc.stdout + proc.stderr)
        assert proc.returncode == 0, proc.stdout[-4000:]
        assert "ESTABLISH LOCAL CONNECTION" in proc.stdout
        for what, key in keys.items():
            assert len(key) >= 20 and key not in proc.stdout + proc.stderr, (name, what)


def _warnings(result):
    """Every warning of the run: the JSON callback keeps them in the task results."""
    found = []
    for play in result["plays"]:
        for task in play["tasks"]:
            for host in task["hosts"].values():
                found += [w if isinstance(w, str) else w.get("msg", str(w)) for w in host.get("warnings", [])]
    return found


def test_without_the_gallery_one_warning_says_how_to_add_the_extension(stack):
    warnings = [w for w in _warnings(stack["first"]) if "KiloCode extension" in w]
    assert len(warnings) == 1, _warnings(stack["first"])
    assert "--install-extension kilocode.kilo-code@7.7.7" in warnings[0]
    assert "gallery is unreachable" in warnings[0]


def test_kilo_cli_in_the_ide_answers_through_the_stack(stack):
    """The real Kilo CLI, as the IDE's terminal has it, against the stack as site.yml left it.

    Before the second run: Kilo CLI 7.7.7 migrates a kilo.jsonc without a top-level bash
    permission on its first start (it rewrites the file). The role writes one, so the second
    run below must still change nothing after Kilo has started.
    """
    home = "/home/%s" % USER
    environ = open("/proc/%s/environ" % _code_server_pid(), "rb").read().split(b"\0")
    path = next(v for v in environ if v.startswith(b"PATH=")).decode()[5:]
    kilo = next(os.path.join(d, "kilo") for d in path.split(":") if os.path.exists(os.path.join(d, "kilo")))
    env = ["HOME=" + home, "PATH=" + path, "LANG=C.UTF-8", "NO_PROXY=127.0.0.1,localhost",
           # Nothing may leave this machine: no update check, no models.dev download, no LSP fetch.
           "KILO_DISABLE_AUTOUPDATE=1", "KILO_DISABLE_MODELS_FETCH=1", "KILO_DISABLE_LSP_DOWNLOAD=1"]
    started = time.monotonic()
    result = subprocess.run(
        ["runuser", "-u", USER, "--", "env", "-i"] + env
        + [kilo, "run", "--agent", "coder", "--format", "json",
           "Write a Python function add(a, b) that returns the sum of a and b."],
        cwd=home + "/workspace", capture_output=True, text=True, timeout=420, check=False)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    events = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    texts = [e["part"]["text"] for e in events if e.get("type") == "text" and e.get("part", {}).get("text")]
    assert texts and "".join(texts).strip(), result.stdout[-3000:]
    os.makedirs(ARTIFACTS, exist_ok=True)
    with open(os.path.join(ARTIFACTS, "kilo-cli-answer.txt"), "w") as handle:
        handle.write("kilo %s run --agent coder (%.1f s)\n%s\n" % (kilo, elapsed, "".join(texts)))


def test_second_run_changes_nothing(stack):
    second = _play(stack["extra"], stack["out"])
    assert _stats(second)["changed"] == 0 and _stats(second)["failures"] == 0
    # Within code_server_kilocode_extension_retry_after of the unreachable gallery, the re-run
    # does not start code-server to try again: it says when the next try is.
    warnings = [w for w in _warnings(second) if "KiloCode extension" in w]
    assert len(warnings) == 1 and "min tries again" in warnings[0], _warnings(second)
    installs = [host for play in second["plays"] for task in play["tasks"]
                if task["task"]["name"].startswith("llmops.codestack.code_server_kilocode : Install the extension")
                for host in task["hosts"].values()]
    assert installs and all(host.get("skipped") for host in installs), installs


def test_a_rerun_with_mitogens_strategy_changes_nothing(stack):
    """The accelerated re-run docs/performance.md offers (Mitogen's strategy plugin, switched on
    as it says) runs every task of the no-change path, the package checks and our action
    plugins included, and still changes nothing."""
    env = strategy_env("mitogen_linear")
    assert env["ANSIBLE_STRATEGY"] == "mitogen_linear" and os.path.isdir(env["ANSIBLE_STRATEGY_PLUGINS"])
    third = _play(stack["extra"], stack["out"], env=env, log="site-mitogen.log")
    assert _stats(third)["changed"] == 0 and _stats(third)["failures"] == 0
    assert _stats(third)["ok"] > 50, _stats(third)


def _code_server_pid():
    pidfile = "/home/%s/.local/state/code-server-kilocode/supervisor.pid" % USER
    supervisor = open(pidfile).read().strip()
    children = subprocess.run(["pgrep", "-P", supervisor], capture_output=True, text=True,
                              check=True).stdout.split()
    return children[0]


def test_teardown_stops_every_local_service(stack):
    down = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "teardown.yml"),
         "-e", json.dumps({"codestack_output": stack["extra"]["codestack_output"]})],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1"), capture_output=True, text=True, timeout=600, check=False)
    (stack["out"] / "teardown.log").write_text(down.stdout + down.stderr)
    assert down.returncode == 0, down.stdout[-4000:]
    state = json.loads((stack["out"] / "stack" / "state.json").read_text())
    assert state["resources"] == []
    assert {r["id"] for r in state["removed"]} == {"llamacpp", "litellm", "code-server"}
    for port in stack["ports"].values():
        # Nothing listens any more: the connection itself is refused (an HTTP error would not do).
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
