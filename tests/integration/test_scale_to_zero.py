"""Scale to zero on rented GPUs: a scripted developer day through the real LiteLLM gateway and
the waker, as the stage playbooks deploy them, against the RunPod and Vast.ai fakes on an
accelerated clock (CODESTACK_CLOCK_SCALE: one wall second is five provider minutes).

The plan of tests/integration/_cloudstack.py (architect+reviewer on a RunPod H100, coder+debugger
on a Vast.ai RTX 4090, each rented machine relaying to a real llama.cpp server) gets idle_stop
scaling: the H100 with wake_policy fallback (the gateway's fallback, the 4090's group, answers
while it wakes), the 4090 with wake_policy wait. Bursts of requests through every alias, with
concurrent first requests and a stream, are separated by gaps longer than the idle timeout.
Asserted: no failed request; every machine stopped in every gap (the fakes' ledgers); one wake
per burst and deployment; first requests answered within the wake timeout; the ledger's cost
within 25 % of the contract's billed estimate; then a resume that RunPod refuses (no free GPU on
the host) is replaced by a fresh pod recorded in state.json, and teardown leaves nothing.
"""

import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest

from _cloudstack import CloudStack, plan_blueprint, split_plan, wait_for
from _services import start_llamacpp

pytestmark = [pytest.mark.integration]

SCALE = 300.0         # provider seconds per wall second
IDLE_S = 600          # idle_timeout_s of both deployments (2 wall seconds: more than a request takes)
# The wake timeout allows the fake Vast.ai machine's real container process (TLS relay) to boot,
# which takes wall seconds, not provider seconds.
WAKE_TIMEOUT_S = 9600
BURST_S = 1800        # a working session
GAP_S = 2400          # between sessions
BURSTS = 3
ALIASES = ("architect", "reviewer", "coder", "debugger")


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


def _plan(tmp):
    plan = split_plan(plan_blueprint(tmp))
    policies = {"big-qwen-h100": "fallback", "small-qwen-4090": "wait"}
    for dep in plan["deployments"]:
        dep["scaling"] = {"mode": "idle_stop", "idle_timeout_s": IDLE_S, "expected_wakes": BURSTS,
                          "wake_policy": policies[dep["name"]], "wake_timeout_s": WAKE_TIMEOUT_S}
    path = tmp / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return plan, path


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def _ask(stack, alias, stream=False):
    """One request through the gateway: (status, seconds, fallbacks tried, text)."""
    key = (stack.tmp / "litellm" / "master_key").read_text().strip()
    body = {"model": alias, "max_tokens": 4, "messages": [{"role": "user", "content": "Say hi."}]}
    if stream:
        body["stream"] = True
    request = urllib.request.Request("http://127.0.0.1:%d/v1/chat/completions" % stack.gateway_port,
                                     data=json.dumps(body).encode(),
                                     headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    start = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=120) as answer:
            text = answer.read().decode()
            fallbacks = int(answer.headers.get("x-litellm-attempted-fallbacks") or 0)
            status = answer.status
    except urllib.error.HTTPError as exc:
        return exc.code, time.monotonic() - start, 0, exc.read().decode()[:500]
    if stream and "data: [DONE]" not in text:
        status = 599
    return status, time.monotonic() - start, fallbacks, text


def _burst_first(stack):
    """Concurrent first requests: two per alias and a stream."""
    results = []
    lock = threading.Lock()

    def one(alias, stream=False):
        outcome = _ask(stack, alias, stream)
        with lock:
            results.append((alias, stream) + outcome)
    threads = [threading.Thread(target=one, args=(a,)) for a in ALIASES for _copy in range(2)]
    threads.append(threading.Thread(target=one, args=("coder", True)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=150)
    return results


def _session(stack, until):
    """Every alias asks again and again (one client each, concurrently) until ``until``."""
    results = []
    lock = threading.Lock()

    def loop(alias):
        while True:
            outcome = _ask(stack, alias)
            with lock:
                results.append((alias, False) + outcome)
            if time.monotonic() >= until:
                return
    threads = [threading.Thread(target=loop, args=(a,)) for a in ALIASES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def _wait_for(predicate, timeout, what):
    return wait_for(predicate, timeout, what, step=0.05)


def _segments(ledger, resource):
    return [line for line in ledger["lines"] if str(line["resource"]) == str(resource)]


def test_a_working_day_scales_to_zero_between_bursts_and_a_refused_resume_is_replaced(tmp_path, upstream):
    plan, plan_file = _plan(tmp_path)
    # A resumed machine answers after the deployment's planned cold start (its container disk is
    # gone: image and weights again).
    cold = dict((d["name"], float(d["cold_start_s"])) for d in plan["deployments"])
    stack = CloudStack(tmp_path, upstream, runpod_config={"resume_delay": cold["big-qwen-h100"]},
                       vast_config={"steal_offers": [3001], "resume_delay": cold["small-qwen-4090"]})
    try:
        variables = stack.site_vars(plan_file, codestack_calibrate=False, waker_poll_interval_s=10,
                                    waker_keepalive_s=0.05)
        _ok(stack.run("plan.yml", dict(variables, plan_output=str(stack.out), plan_file=str(plan_file))))
        _ok(stack.run("provision.yml", variables))
        _ok(stack.run("serve.yml", variables))
        # From here on the day runs on the accelerated clock (provisioning ran in real time).
        stack.runpod.configure(clock_scale=SCALE)
        stack.vast.configure(clock_scale=SCALE)
        stack.env["CODESTACK_CLOCK_SCALE"] = str(SCALE)
        scale = stack.run("scale.yml", variables)
        _ok(scale)
        assert scale.stdout.count('"mode": "idle_stop"') == 2, scale.stdout[-3000:]
        _ok(stack.run("route.yml", variables))   # its smoke test already wakes both machines

        waker = next(r for r in stack.state()["resources"] if r["id"] == "waker")["attributes"]
        assert waker["deployments"] == ["big-qwen-h100", "small-qwen-4090"]
        assert waker["stop_argv"]
        status = waker["status_url"]
        config = json.loads((tmp_path / "waker" / "config.json").read_text())
        assert set(config["deployments"]) == set(waker["deployments"])
        assert (tmp_path / "waker" / "credentials.json").stat().st_mode & 0o077 == 0
        assert "test-key" not in (tmp_path / "waker" / "config.json").read_text()
        machines = {"big-qwen-h100": config["deployments"]["big-qwen-h100"]["resource_id"],
                    "small-qwen-4090": config["deployments"]["small-qwen-4090"]["resource_id"]}

        def all_stopped():
            deps = _get(status)["deployments"]
            return all(d["state"] == "stopped" for d in deps.values())
        _wait_for(all_stopped, 30, "both machines stopped after the route stage")

        # ------------------------------------------------------------ the day
        t0_wall = time.time()
        t0 = {"runpod": stack.runpod.clock.now(), "vast": stack.vast.clock.now()}
        bursts = []
        for _burst in range(BURSTS):
            start = {"runpod": stack.runpod.clock.now(), "vast": stack.vast.clock.now()}
            started = time.monotonic()
            first = _burst_first(stack)
            rest = _session(stack, started + BURST_S / SCALE)
            end = {"runpod": stack.runpod.clock.now(), "vast": stack.vast.clock.now()}
            bursts.append({"start": start, "end": end, "first": first, "rest": rest})
            time.sleep(GAP_S / SCALE)
        _wait_for(all_stopped, 30, "both machines stopped after the last burst")
        t_end = {"runpod": stack.runpod.clock.now(), "vast": stack.vast.clock.now()}
        events = [e for e in _get(status)["events"] if e["at"] >= t0_wall]

        failed = [r for b in bursts for r in b["first"] + b["rest"] if r[2] != 200]
        assert failed == [], failed[:3]
        assert len(bursts[0]["first"]) == 9 and all(len(b["rest"]) >= 4 for b in bursts)
        # First requests: answered within the wake timeout, by the woken GPU (wait) or the
        # gateway's fallback (fallback).
        for burst in bursts:
            for alias, _stream, status_code, seconds, _fallbacks, _text in burst["first"]:
                assert seconds < WAKE_TIMEOUT_S / SCALE + 10, (alias, seconds)
        wakes = dict((name, [e for e in events if e["event"] == "woken" and e["deployment"] == name])
                     for name in machines)
        stops = dict((name, [e for e in events if e["event"] == "stopped" and e["deployment"] == name])
                     for name in machines)
        assert dict((n, len(w)) for n, w in wakes.items()) == {"big-qwen-h100": BURSTS, "small-qwen-4090": BURSTS}, events
        assert dict((n, len(s)) for n, s in stops.items()) == {"big-qwen-h100": BURSTS, "small-qwen-4090": BURSTS}, events
        assert all("idle for" in e["reason"] for s in stops.values() for e in s)
        assert [e for e in events if e["event"] in ("wake_failed", "stop_failed")] == []

        # Every machine stopped in every gap, as the providers' ledgers show.
        ledgers = {"runpod": stack.runpod.snapshot()["ledger"], "vast": stack.vast.snapshot()["ledger"]}
        providers = {"big-qwen-h100": "runpod", "small-qwen-4090": "vast"}
        for name, resource in machines.items():
            provider = providers[name]
            lines = _segments(ledgers[provider], resource)
            for before, after in zip(bursts, bursts[1:]):
                gap = (before["end"][provider] + IDLE_S + 300, after["start"][provider])
                assert gap[1] > gap[0]
                running = [l for l in lines if l["kind"] == "gpu" and l["start"] < gap[1] and l["end"] > gap[0]]
                assert running == [], (name, gap, running)
                assert any(l["kind"] == "storage" and l["start"] <= gap[0] and l["end"] >= gap[1] for l in lines)

        # The ledger against the contract's billed estimate (the billing branch's plan fields are
        # not in main yet): per planned wake, the session, the idle tail before the stop and the
        # resume (the planned cold start), at the hourly price the machine was rented at (the
        # state file's cost_per_hour: the fakes' price table is not the catalog's); the disk while
        # stopped is what the ledger adds on top.
        rented = dict((r["attributes"]["deployment"], float(r["cost_per_hour"]))
                      for r in stack.state()["resources"] if r["provider"] in providers.values())
        estimate = sum(rented[n] * BURSTS * (BURST_S + IDLE_S + cold[n]) / 3600.0 for n in machines)
        plan_prices = dict((d["name"], [float(o["price_per_hour_usd"]) for o in [d] + d["alternatives"]
                                        if o["provider"] == providers[d["name"]]][0]) for d in plan["deployments"])
        at_plan_prices = sum(plan_prices[n] * BURSTS * (BURST_S + IDLE_S + cold[n]) / 3600.0 for n in machines)
        billed = 0.0
        for name, resource in machines.items():
            provider = providers[name]
            for line in _segments(ledgers[provider], resource):
                start, end = max(line["start"], t0[provider]), min(line["end"], t_end[provider])
                if end > start:
                    billed += (end - start) * line["usd_per_hour"] / 3600.0
        report = {"estimate_usd": round(estimate, 4), "ledger_usd": round(billed, 4),
                  "estimate_at_plan_prices_usd": round(at_plan_prices, 4),
                  "always_on_usd": round(sum(rented.values()) * (t_end["runpod"] - t0["runpod"]) / 3600.0, 4),
                  "wakes": dict((n, len(w)) for n, w in wakes.items()),
                  "wake_wall_s": dict((n, [e["wall_s"] for e in w]) for n, w in wakes.items()),
                  "first_request_s": [round(r[3], 3) for b in bursts for r in b["first"]]}
        (tmp_path / "session.json").write_text(json.dumps(report, indent=2))
        results = os.environ.get("CODESTACK_SESSION_REPORT")
        if results:
            with open(results, "w") as handle:
                json.dump(report, handle, indent=2)
        print("simulated day:", json.dumps(report))
        assert billed == pytest.approx(estimate, rel=0.25), report

        # ------------------------------------------------------------ refused resume
        old = machines["big-qwen-h100"]
        stack.runpod.configure(resume_refused=["all"])
        code, _seconds, _fallbacks, _text = _ask(stack, "architect")
        assert code == 200
        fresh = _wait_for(lambda: (_get(status)["deployments"]["big-qwen-h100"]["resource_id"] != old
                                   and _get(status)["deployments"]["big-qwen-h100"]["state"] == "running"
                                   and _get(status)["deployments"]["big-qwen-h100"]["resource_id"]), 30,
                          "a fresh pod for the refused resume")
        assert _ask(stack, "architect")[0] == 200
        state = stack.state()
        pods = [r for r in state["resources"] if r["provider"] == "runpod"]
        assert [p["id"] for p in pods] == [fresh] and pods[0]["attributes"]["replaces"] == old
        assert pods[0]["attributes"]["deployment"] == "big-qwen-h100"
        assert old in [r["id"] for r in state["removed"]]
        live = [p["id"] for p in stack.runpod.snapshot()["pods"]]
        assert live == [fresh]
        assert any(h["event"] == "resume_refused" and h["pod"] == old for h in stack.runpod.history)

        _ok(stack.teardown())
        live = stack.live()
        assert (live["runpod_pods"], live["vast_instances"], live["runpod_endpoints"]) == (0, 0, 0)
        with pytest.raises(OSError):
            _get(status)
    finally:
        if stack.live()["runpod_pods"] or stack.live()["vast_instances"]:
            stack.teardown()
        stack.close()
