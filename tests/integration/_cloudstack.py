"""A cloud stack against the provider fakes: site.yml and teardown.yml as users run them.

The RunPod and Vast.ai fakes stand in for the paid APIs; each rented machine's model port is
relayed to a real OpenAI-compatible server on this machine (``upstream``), standing in for the
vLLM the pod would boot. The LiteLLM gateway (and code-server, when asked) are real.

Used by tests/integration/test_site_cloud.py and benchmarks/site_bench.py.
"""

import copy
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))

from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position
from vast_fake import VastFake  # noqa: E402  pylint: disable=wrong-import-position

from _services import free_port  # noqa: E402  pylint: disable=wrong-import-position

API_KEY = "test-key"
STACK_ID = "codestack-mixed-e2e"
BLUEPRINT = """\
schema_version: 1
project:
  name: mixed-e2e
  description: A small web service built on rented GPUs from two providers.
features:
  - {name: api, description: "REST API with auth.", priority: must, complexity: medium}
  - {name: ui, description: "Admin UI.", priority: should, complexity: low}
constraints:
  budget_eur: 500
  deadline_hours: 24
  quality: high
  providers: [runpod, vast]
ide: none
"""


def plan_blueprint(tmp_path, env=None, control_server=None):
    """plan.yml on the blueprint above: a real plan whose options span RunPod and Vast.ai
    (``control_server``: the codestack_control_server the plan prices too)."""
    (tmp_path / "blueprint.yml").write_text(BLUEPRINT)
    out = tmp_path / "planned"
    variables = {"blueprint": str(tmp_path / "blueprint.yml"), "plan_output": str(out)}
    if control_server:
        variables["codestack_control_server"] = control_server
    proc = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "plan.yml"), "-e", json.dumps(variables)],
        env=dict(os.environ, ANSIBLE_NOCOLOR="1", **(env or {})), capture_output=True, text=True,
        timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return json.loads((out / "plan.json").read_text())


def wait_for(predicate, timeout, what, step=0.5):
    """The first truthy value of ``predicate()``, polled every ``step`` seconds; an
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out after %ss waiting for %s" % (timeout, what))


def split_plan(plan):
    """The planner's plan edited by a reviewer: architect+reviewer on one machine, coder+debugger
    on a second, cheaper one, so the stack spans RunPod and Vast.ai.

    Deployment ``big`` prefers the plan's Vast.ai H100 option and falls back to its RunPod H100
    option; deployment ``small`` runs on a Vast.ai RTX 4090 with a RunPod RTX 4090 fallback.
    """
    plan = copy.deepcopy(plan)
    options = []
    for dep in plan["deployments"]:
        options.append(dict((k, v) for k, v in dep.items() if k not in ("alternatives", "roles", "name")))
        options += dep.get("alternatives") or []
    vast = [o for o in options if o["provider"] == "vast"]
    vast_h100 = next((o for o in vast if o["gpu"]["id"] == "h100-sxm"), vast[0])
    runpod = [o for o in options if o["provider"] == "runpod"]
    # The plan's on-demand RunPod option; when the billed cost model prefers spot, its best
    # RunPod option is rented on demand instead (this scenario falls back to an on-demand pod).
    runpod_h100 = next((o for o in runpod if o["pricing"] == "on_demand"), None)
    if runpod_h100 is None:
        runpod_h100 = dict(runpod[0], pricing="on_demand",
                           offer_id="runpod:%s:on_demand" % runpod[0]["gpu"]["provider_id"])
    big = dict(vast_h100, name="big-qwen-h100", roles=["architect", "reviewer"],
               alternatives=[runpod_h100])
    small_vast = dict(vast_h100, gpu={"name": "RTX 4090", "id": "rtx4090", "provider_id": "RTX 4090",
                                      "count": 1, "vram_gb": 24},
                      offer_id="vast:RTX 4090", price_per_hour_usd=0.45)
    small_runpod = dict(runpod_h100, gpu={"name": "RTX 4090", "id": "rtx4090",
                                          "provider_id": "NVIDIA GeForce RTX 4090", "count": 1, "vram_gb": 24},
                        offer_id="runpod:NVIDIA GeForce RTX 4090:on_demand", price_per_hour_usd=0.69)
    small = dict(small_vast, name="small-qwen-4090", roles=["coder", "debugger"], alternatives=[small_runpod])
    plan["deployments"] = [big, small]
    for role in ("architect", "reviewer"):
        plan["roles"][role]["deployment"] = big["name"]
    for role in ("coder", "debugger"):
        plan["roles"][role]["deployment"] = small["name"]
    plan["stack_id"] = STACK_ID
    return plan


class CloudStack:
    """Both fakes, an upstream model server, and runners for site.yml / teardown.yml."""

    def __init__(self, tmp_path, upstream_url, runpod_config=None, vast_config=None):
        self.tmp = tmp_path
        self.out = tmp_path / "stack"
        self.runpod = RunPodFake(**dict(dict(api_key=API_KEY, created_delay=0.1, running_delay=0.3,
                                             upstream=upstream_url), **(runpod_config or {}))).start()
        self.vast = VastFake(**dict(dict(api_key=API_KEY, created_delay=0.1, running_delay=0.3, serve_ports=True,
                                         upstream=upstream_url), **(vast_config or {}))).start()
        self.gateway_port = free_port()
        self.waker_port = free_port()
        self.env = dict(os.environ, RUNPOD_API_KEY=API_KEY, RUNPOD_API_BASE_URL=self.runpod.url,
                        VAST_API_KEY=API_KEY, VAST_URL=self.vast.url, ANSIBLE_NOCOLOR="1",
                        ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_DEPRECATION_WARNINGS="0",
                        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"))

    def site_vars(self, plan_file, **extra):
        variables = {
            "codestack_output": str(self.out),
            "codestack_plan_file": str(plan_file),
            "litellm_gateway_port": self.gateway_port,
            "litellm_gateway_dir": str(self.tmp / "litellm"),
            "waker_port": self.waker_port,
            "waker_dir": str(self.tmp / "waker"),
            "gpu_provision_runpod_proxy_url_template": self.runpod.proxy_template,
            "gpu_provision_wait_sleep": 1,
            "gpu_provision_wait_timeout": 120,
            "codestack_serve_timeout": 120,
            "codestack_budget_guard_interval": 2,
        }
        variables.update(extra)
        return variables

    def command(self, playbook, variables, args=()):
        return (["ansible-playbook", os.path.join(REPO, "playbooks", playbook), "-e", json.dumps(variables)]
                + list(args))

    def run(self, playbook, variables, args=(), timeout=900, json_output=False):
        env = dict(self.env)
        if json_output:
            env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
        start = time.monotonic()
        proc = subprocess.run(self.command(playbook, variables, args), env=env, capture_output=True,
                              text=True, timeout=timeout, check=False)
        proc.wall_s = time.monotonic() - start
        (self.tmp / ("%s-%d.log" % (playbook, int(time.time() * 1000)))).write_text(proc.stdout + proc.stderr)
        return proc

    def start(self, playbook, variables):
        """site.yml in the background, in its own process group (to crash it on purpose)."""
        log = open(self.tmp / ("%s-background.log" % playbook), "w")  # pylint: disable=consider-using-with
        return subprocess.Popen(self.command(playbook, variables), env=self.env, stdout=log,  # pylint: disable=consider-using-with
                                stderr=subprocess.STDOUT, start_new_session=True)

    @staticmethod
    def crash(proc):
        """SIGKILL the whole run: no rescue, no cleanup, as a dead controller would."""
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def teardown(self, **extra):
        variables = {"codestack_output": str(self.out)}
        variables.update(extra)
        return self.run("teardown.yml", variables)

    def state(self):
        path = self.out / "state.json"
        return json.loads(path.read_text()) if path.exists() else None

    def live(self):
        rp, va = self.runpod.snapshot(), self.vast.snapshot()
        return {"runpod_pods": rp["live_pods"], "runpod_endpoints": rp["live_endpoints"],
                "runpod_cost_per_hr": rp["cost_per_hr"], "vast_instances": va["live_instances"],
                "vast_dph_running": va["dph_running"],
                "accumulated_usd": round(rp["accumulated_cost_usd"] + va["accumulated_cost_usd"], 6)}

    def stop_local(self):
        """Stop the gateway (and the guard) whatever happened, so no process outlives the test."""
        for service in ("waker", "litellm"):
            ctl = self.tmp / service / "ctl.sh"
            if ctl.exists():
                subprocess.run([str(ctl), "stop"], check=False, capture_output=True, timeout=60)
        for pidfile in (self.out / "budget-guard").glob("*.pid") if (self.out / "budget-guard").exists() else []:
            subprocess.run(["start-stop-daemon", "--stop", "--oknodo", "--retry", "5", "--pidfile", str(pidfile)],
                           check=False, capture_output=True, timeout=60)

    def close(self):
        self.stop_local()
        self.runpod.stop()
        self.vast.stop()
