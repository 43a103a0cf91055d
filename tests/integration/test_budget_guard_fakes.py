"""The budget guard against the provider fakes, with an accelerated clock.

site.yml builds the two-provider stack of test_site_cloud.py and installs the guard on this
machine, its clock running 20,000 times faster than real time: the stack's 7.37 USD/h (RunPod
H100 7.02 + Vast.ai RTX 4090 0.35) reaches the plan's 540 USD budget (500 EUR) in about 13 s.
The guard must warn first (at 80 %), then, at 100 %, run teardown.yml in stop mode: the fakes
show the pod and the instance stopped (no running cost), the state file marks them stopped,
and the guard records why. Then teardown destroys them.
"""

import json
import time

import pytest

from _cloudstack import STACK_ID, CloudStack, plan_blueprint, split_plan
from _services import start_llamacpp

pytestmark = [pytest.mark.integration]

SCALE = 20000.0


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


def _status(stack):
    path = stack.out / "budget-guard" / ("%s-status.json" % STACK_ID)
    return json.loads(path.read_text()) if path.exists() else {}


def test_guard_warns_then_stops_the_paid_resources_at_the_budget(tmp_path, upstream):
    plan = split_plan(plan_blueprint(tmp_path))
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    stack = CloudStack(tmp_path, upstream, vast_config={"steal_offers": [3001]})
    try:
        built = stack.run("site.yml", stack.site_vars(plan_file, codestack_calibrate=False,
                                                      codestack_budget_action="stop",
                                                      codestack_budget_clock_scale=SCALE,
                                                      codestack_budget_guard_interval=1))
        assert built.returncode == 0, built.stdout[-6000:]
        budget = round(plan["checks"]["budget"]["limit"] * plan["totals"]["usd_per_eur"], 2)

        deadline = time.monotonic() + 240
        status = {}
        while time.monotonic() < deadline:
            status = _status(stack)
            if status.get("enforced") or any(e["kind"] == "stop" and e.get("rc") not in (None, 0)
                                             for e in status.get("events", [])):
                break
            time.sleep(1)
        events = status.get("events", [])
        assert status.get("enforced") is True, json.dumps(status, indent=2)[-4000:]
        kinds = [e["kind"] for e in events]
        assert kinds == ["warn", "stop"], kinds

        warn, stop = events
        assert status["budget_usd"] == pytest.approx(budget)
        # Warned between 80 % and 100 %; stopped at 100 %, within a few checks' worth of spend
        # (41 USD per real second at this clock, one check per second, then teardown's minute).
        warn_spend = float(warn["message"].split()[1])
        stop_spend = float(stop["message"].split()[1])
        assert 0.8 * budget <= warn_spend < budget, warn
        assert budget <= stop_spend < 1.15 * budget, stop
        assert "running stop" in stop["message"] and stop["rc"] == 0

        live = stack.live()
        assert live["runpod_cost_per_hr"] == 0 and live["vast_dph_running"] == 0, live
        # Stopped, not destroyed: both still exist (their disks), both marked stopped in the state file.
        assert live["runpod_pods"] == 1 and live["vast_instances"] == 1
        paid = [r for r in stack.state()["resources"] if r["provider"] in ("runpod", "vast")]
        assert len(paid) == 2 and all(r.get("stopped_at") for r in paid), paid
        # The gateway and the guard were left alone by the guard's own teardown.
        assert {r["id"] for r in stack.state()["resources"] if r["provider"] == "local"} == {"litellm", "budget-guard"}

        down = stack.teardown()
        assert down.returncode == 0, down.stdout[-4000:]
        live = stack.live()
        assert (live["runpod_pods"], live["vast_instances"]) == (0, 0)
    finally:
        stack.close()
