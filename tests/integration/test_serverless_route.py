"""RunPod serverless end to end: plan.yml plans a serverless endpoint, site.yml provisions it
against the RunPod fake and routes the role aliases through the real LiteLLM gateway, which
calls RunPod's OpenAI-compatible route ``/v2/<endpoint_id>/openai/v1`` with the RunPod API key.

The first request meets a cold worker: it waits in the endpoint's queue for the worker's start,
and is answered (by a real llama.cpp server standing in for the worker's vLLM). The worker
scales down after the planned idle timeout; the fake's ledger bills its worker-seconds at the
flex price. The key reaches LiteLLM as ``os.environ/RUNPOD_API_KEY``: it is in the gateway's
0600 environment file, never in config.yaml or the run's output. The budget guard counts the
endpoint at what RunPod's billing history reports. Teardown deletes the endpoint and reports
what RunPod billed beside the plan's billed estimate.
"""

import json
import os
import stat
import subprocess
import time
import urllib.request

import pytest

from _cloudstack import API_KEY, REPO, CloudStack
from _services import start_llamacpp
from runpod_serverless import FLEX_PRICES

pytestmark = [pytest.mark.integration]

COLD_START_S = 4.0     # the fake worker's cold start (simulated seconds, clock scale 1)
IDLE_TIMEOUT_S = 3     # set per role in the blueprint; the plan prices it, gpu_provision sets it
BLUEPRINT = """\
schema_version: 1
project:
  name: serverless-e2e
  description: A small service whose models run on RunPod serverless workers.
features:
  - {name: api, description: "REST API with auth.", priority: must, complexity: low}
constraints:
  budget_usd: 100
  deadline_hours: 24
  quality: standard
  providers: [runpod_serverless]
  scaling:
    architect: {idle_timeout_s: %(idle)d}
    coder: {idle_timeout_s: %(idle)d}
    debugger: {idle_timeout_s: %(idle)d}
    reviewer: {idle_timeout_s: %(idle)d}
ide: none
""" % {"idle": IDLE_TIMEOUT_S}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


def _plan(tmp_path, env):
    (tmp_path / "blueprint.yml").write_text(BLUEPRINT)
    out = tmp_path / "planned"
    proc = subprocess.run(
        ["ansible-playbook", os.path.join(REPO, "playbooks", "plan.yml"),
         "-e", json.dumps({"blueprint": str(tmp_path / "blueprint.yml"), "plan_output": str(out)})],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    return out / "plan.json"


def _ask(stack, alias):
    key = (stack.tmp / "litellm" / "master_key").read_text().strip()
    body = json.dumps({"model": alias, "max_tokens": 8,
                       "messages": [{"role": "user", "content": "Say hi."}]})
    request = urllib.request.Request(
        "http://127.0.0.1:%d/v1/chat/completions" % stack.gateway_port, data=body.encode(),
        headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    start = time.monotonic()
    with urllib.request.urlopen(request, timeout=120) as answer:
        return json.load(answer), time.monotonic() - start


def _workers(stack, endpoint_id):
    request = urllib.request.Request("%s/v2/%s/health" % (stack.runpod.url, endpoint_id),
                                     headers={"Authorization": "Bearer " + API_KEY})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)["workers"]


def _guard_status(stack, stack_id):
    path = stack.out / "budget-guard" / ("%s-status.json" % stack_id)
    return json.loads(path.read_text()) if path.exists() else {}


def test_serverless_endpoint_is_routed_with_the_runpod_key_through_a_cold_worker(tmp_path, upstream):
    stack = CloudStack(tmp_path, upstream, runpod_config={"serverless_cold_start_s": COLD_START_S,
                                                          "clock_scale": 1.0})
    try:
        plan_file = _plan(tmp_path, stack.env)
        plan = json.loads(plan_file.read_text())
        (dep,) = plan["deployments"]
        assert dep["provider"] == "runpod_serverless"
        assert dep["scaling"]["mode"] == "serverless"
        assert dep["scaling"]["idle_timeout_s"] == IDLE_TIMEOUT_S
        variables = stack.site_vars(
            plan_file, gpu_provision_runpod_serverless_openai_url_template=stack.runpod.openai_template,
            codestack_runpod_billing_url=stack.runpod.url + "/v2", codestack_budget_guard_interval=1)
        proc = stack.run("site.yml", variables)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
        assert API_KEY not in proc.stdout + proc.stderr

        (endpoint,) = stack.runpod.snapshot()["endpoints"]
        assert endpoint["idleTimeout"] == IDLE_TIMEOUT_S      # what the plan priced
        config = (tmp_path / "litellm" / "config.yaml").read_text()
        assert "/v2/%s/openai/v1" % endpoint["id"] in config
        assert "os.environ/RUNPOD_API_KEY" in config and API_KEY not in config
        env_file = tmp_path / "litellm" / "env"
        assert "RUNPOD_API_KEY=%s" % API_KEY in env_file.read_text()
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600

        # site.yml asked every alias once; wait until that worker has scaled down again
        deadline = time.monotonic() + 60
        while _workers(stack, endpoint["id"])["ready"] + \
                _workers(stack, endpoint["id"])["initializing"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _workers(stack, endpoint["id"])["ready"] == 0
        before = stack.runpod.snapshot()["serverless"]["endpoints"][endpoint["id"]]

        # a cold worker: the request waits for its start in the queue, then it is answered
        answer, seconds = _ask(stack, "coder")
        assert answer["choices"][0]["message"]["content"] is not None
        assert seconds >= COLD_START_S * 0.9
        warm, warm_seconds = _ask(stack, "reviewer")     # same worker, no second start
        assert warm["choices"] and warm_seconds < COLD_START_S
        history = [h for h in stack.runpod.snapshot()["history"]
                   if h["event"] == "worker_started" and h["endpoint"] == endpoint["id"]]
        assert len(history) == before["worker_runs"] + 1

        # the worker scales down after the idle timeout and is billed per worker-second
        time.sleep(IDLE_TIMEOUT_S + 0.5)
        assert _workers(stack, endpoint["id"])["ready"] == 0
        after = stack.runpod.snapshot()["serverless"]["endpoints"][endpoint["id"]]
        run_s = after["billed_s"] - before["billed_s"]
        assert after["worker_runs"] == before["worker_runs"] + 1
        longest = COLD_START_S + IDLE_TIMEOUT_S + seconds + warm_seconds + 3
        assert COLD_START_S + IDLE_TIMEOUT_S <= run_s <= longest
        price = FLEX_PRICES[endpoint["gpuIds"].split(",")[0]]
        spent = after["amount_usd"] - before["amount_usd"]
        assert spent == pytest.approx(run_s * price, abs=1e-5)
        # the budget guard counts the endpoint at what RunPod bills (its billing history), not
        # at its hourly price since creation
        deadline = time.monotonic() + 60
        status = {}
        while time.monotonic() < deadline:
            status = _guard_status(stack, plan["stack_id"])
            if status.get("serverless_usd") == pytest.approx(after["amount_usd"], abs=1e-6):
                break
            time.sleep(1)
        assert status.get("serverless_usd") == pytest.approx(after["amount_usd"], abs=1e-6), status
        assert status["billing_error"] is None
        (line,) = [r for r in status["resources"] if r["id"] == endpoint["id"]]
        assert line["billed_s"] == after["billed_s"]
        teardown = stack.teardown(codestack_runpod_billing_url=stack.runpod.url + "/v2")
        assert teardown.returncode == 0, teardown.stdout[-4000:]
        assert stack.live()["runpod_endpoints"] == 0
        # teardown's report: the endpoint at what RunPod billed, beside the plan's estimate
        report = json.loads((stack.out / "teardown.json").read_text())
        (billed,) = [r for r in report["resources"] if r["id"] == endpoint["id"]]
        ledger = stack.runpod.snapshot()["serverless"]["endpoints"][endpoint["id"]]
        assert billed["usd"] == pytest.approx(ledger["amount_usd"], abs=1e-4)
        assert report["plan"]["billed_estimate_usd"] == plan["totals"]["cost_usd"]
        assert report["plan"]["always_on_cost_usd"] == plan["totals"]["always_on_cost_usd"]
        assert API_KEY not in teardown.stdout + teardown.stderr
    finally:
        stack.close()
