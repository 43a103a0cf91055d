"""The control plane on a host that stays: site.yml builds onto a remote control host.

The control host is a podman container with systemd and sshd (conftest.py ``control_host``),
named in group codestack_control of the inventory. The plan rents on the RunPod and Vast.ai
fakes (each rented port relayed to a real llama.cpp server on this machine); the gateway, the
IDE and the budget guard run under systemd on the control host. One built stack serves every
check: every alias answers, the IDE's login page loads, a re-run changes nothing, a second stack
on the same host is refused before anything is rented for it, then, after
the controller's ansible-playbook has exited, the guard on the host stops the rented GPUs at its
budget (accelerated clock) with its own 0600 settings, and teardown from the controller removes
the rest, reaching the host's services through the inventory.
"""

import json
import urllib.request

import pytest

from _cloudstack import STACK_ID, CloudStack, plan_blueprint, split_plan, wait_for
from _control_host import HOST_PYTHON_PREFIX
from _services import free_port, start_llamacpp

pytestmark = [pytest.mark.remote, pytest.mark.integration]

ALIASES = ("architect", "coder", "debugger", "reviewer")
HOST_DIR = "/var/lib/codestack/" + STACK_ID


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("plan")
    plan = split_plan(plan_blueprint(tmp))
    plan["blueprint"]["ide"] = "kilocode"
    path = tmp / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return path


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def _changed(proc):
    return dict((host, stats["changed"]) for host, stats in json.loads(proc.stdout)["stats"].items())


def _ask(port, key, alias):
    body = json.dumps({"model": alias, "max_tokens": 8, "messages": [{"role": "user", "content": "Say hi."}]})
    request = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % port, data=body.encode(),
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer)


def _wait_for(predicate, timeout, what):
    return wait_for(predicate, timeout, what, step=1)


def test_stack_on_a_remote_control_host(tmp_path, upstream, plan_file, control_host):
    stack = CloudStack(tmp_path, upstream, vast_config={"steal_offers": [3001]})
    try:
        _build_check_guard_teardown(stack, plan_file, control_host)
    finally:
        stack.close()


def _build_check_guard_teardown(stack, plan_file, host):
    ide_port = free_port()
    variables = stack.site_vars(plan_file, codestack_calibrate=False,
                                litellm_gateway_python=HOST_PYTHON_PREFIX + "/bin/python3",
                                # This machine's PyPI goes through a TLS proxy the container does not
                                # trust: the guard's ansible-core is the mounted one, like LiteLLM.
                                codestack_guard_ansible_python=HOST_PYTHON_PREFIX + "/bin/python3",
                                code_server_kilocode_install_method="prebuilt",
                                code_server_kilocode_prefix="/opt/code-server",
                                code_server_kilocode_port=ide_port,
                                code_server_kilocode_cli_install=False,
                                codestack_kilocode_extension=False)
    # The gateway's directory is the product's own on the control host, not one of this machine.
    variables.pop("litellm_gateway_dir")
    inventory = ["-i", str(host.inventory)]

    first = stack.run("site.yml", variables, inventory, json_output=True)
    _ok(first)
    state = stack.state()
    local = dict((r["id"], r) for r in state["resources"] if r["provider"] == "local")
    assert set(local) == {"litellm", "code-server", "budget-guard"}
    assert {r["attributes"]["host"] for r in local.values()} == {"control"}
    # Each runs as a systemd unit of the control host (the roles pick systemd when it is PID 1).
    for resource in local.values():
        argv = resource["attributes"]["stop_argv"]
        assert argv[:2] == ["systemctl", "stop"], argv
        assert host.exec(["systemctl", "is-active", argv[-1]], check=False).stdout.strip() == "active", argv
    assert not (stack.tmp / "litellm").exists() and not (stack.out / "budget-guard").exists()

    # Every role alias answers through the gateway on the control host.
    master = host.exec(["cat", HOST_DIR + "/litellm/master_key"]).stdout.strip()
    for alias in ALIASES:
        assert _ask(stack.gateway_port, master, alias)["choices"][0]["message"]["content"]
    with urllib.request.urlopen("http://127.0.0.1:%d/login" % ide_port, timeout=30) as login:
        assert login.status == 200 and b"code-server" in login.read()

    second = stack.run("site.yml", variables, inventory, json_output=True)
    _ok(second)
    assert set(_changed(second).values()) == {0}, second.stdout[-4000:]
    print("remote build %.1f s, re-run %.1f s" % (first.wall_s, second.wall_s))

    # A second stack on the same control host is refused before anything is rented for it.
    other = stack.tmp / "second-stack"
    other.mkdir()
    (other / "plan.json").write_text(json.dumps(dict(json.loads(plan_file.read_text()), stack_id="codestack-second")))
    asked = (stack.runpod.snapshot()["counters"]["graphql"], stack.vast.snapshot()["counters"]["requests"])
    refused = stack.run("provision.yml", dict(variables, codestack_output=str(other)), inventory)
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert ("control already serves another stack: unit codestack-litellm runs /var/lib/codestack/%s/litellm/ctl.sh"
            % STACK_ID) in refused.stdout, refused.stdout[-3000:]
    assert (stack.runpod.snapshot()["counters"]["graphql"], stack.vast.snapshot()["counters"]["requests"]) == asked

    # The guard's settings (the teardown credentials among them) are 0600 files of its own.
    settings = HOST_DIR + "/budget-guard/%s.json" % STACK_ID
    assert host.exec(["stat", "-c", "%a %U", settings]).stdout.split() == ["600", "root"]
    assert json.loads(host.exec(["cat", settings]).stdout)["command_env"]["RUNPOD_API_KEY"]

    # Hours of billing in seconds: once this controller run has exited, the guard alone stops
    # the rented GPUs at the budget.
    _ok(stack.run("guard.yml", dict(variables, codestack_budget_clock_scale=200000), inventory))
    _wait_for(lambda: stack.live()["runpod_cost_per_hr"] == 0 and stack.live()["vast_dph_running"] == 0,
              180, "the guard on the control host to stop the rented GPUs")

    def stop_event():
        status = json.loads(host.exec(["cat", HOST_DIR + "/budget-guard/%s-status.json" % STACK_ID]).stdout)
        return [e for e in status["events"] if e["kind"] == "stop"]
    # The guard records the stop once its teardown run (on the host) has returned.
    stops = _wait_for(stop_event, 180, "the guard's stop event")
    assert stops[-1]["rc"] == 0, stops
    assert stack.live()["runpod_pods"] == 1 and stack.live()["vast_instances"] == 1   # stopped, kept

    # Teardown from the controller: the paid machines at the fakes, the services on the host.
    down = stack.teardown()
    assert down.returncode != 0 and "Not stopped" in down.stdout and "control" in down.stdout, down.stdout[-3000:]
    _ok(stack.run("teardown.yml", {"codestack_output": str(stack.out)}, inventory))
    live = stack.live()
    assert (live["runpod_pods"], live["vast_instances"]) == (0, 0)
    for resource in local.values():
        unit = resource["attributes"]["stop_argv"][-1]
        assert host.exec(["systemctl", "is-active", unit], check=False).stdout.strip() != "active", unit
    assert stack.state()["resources"] == []
