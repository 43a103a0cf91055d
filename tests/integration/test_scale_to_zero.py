"""Scale to zero on rented GPUs: a scripted developer day through the real LiteLLM gateway and
the waker, as the stage playbooks deploy them, against the RunPod and Vast.ai fakes on an
accelerated clock (CODESTACK_CLOCK_SCALE: one wall second is SCALE provider seconds).

The planner's plan of tests/integration/_cloudstack.py split over two machines (architect+
reviewer on a RunPod pod, on demand; coder+debugger on a Vast.ai RTX 4090; each relaying to a
real llama.cpp server), each deployment priced by the planner's own code at the catalog offer
the fakes rent (the fakes run at the catalog's prices, ``catalog_prices``): the RunPod one with
wake_policy fallback (the gateway's fallback, the 4090's group, answers while it wakes), the
4090 with wake_policy wait. The day follows plan.json's usage model: ``expected_wakes``
sessions over the deadline (``window_h``), each with concurrent first requests and a stream,
then every alias asking until its deployment has done its share of the planned work; the
machines stop in between and the fakes' clocks jump over the stopped hours.
Asserted: no failed request; the fallback deployment's first requests answered by the fallback
while it cold-starts; every machine stopped in every gap (the fakes' ledgers); one wake per
session and deployment; first requests within the wake timeout; the ledger over the deadline
within 25 % of plan.json's billed estimate, per deployment and in total; then a resume that
RunPod refuses (no free GPU on the host) is replaced by a fresh pod recorded in state.json, and
teardown leaves nothing.
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
from _billing import catalog_offers

from ansible_collections.llmops.codestack.plugins.module_utils import _planner

pytestmark = [pytest.mark.integration]

# Provider seconds per wall second while a machine may run. Every wall second a request spends in
# the gateway (the CPU llama.cpp behind both machines answers the 9 first requests one after the
# other) is billed SCALE provider seconds, which the plan does not know of: at 300 the ledger
# came to 1.9x the plan, at 100 to 1.2x; at 50 a wake's up time is 12-25 wall s.
SCALE = 50.0
# The plan's wake timeout (its start x 1.5 + 30 s) plus wall seconds for the fake Vast.ai
# machine's real container process (TLS relay) to boot and the loaded machine's scheduling.
WAKE_TIMEOUT_S = 3000
ALIASES = ("architect", "reviewer", "coder", "debugger")
POLICIES = {"big-qwen-h100": "fallback", "small-qwen-4090": "wait"}
PROVIDERS = {"big-qwen-h100": "runpod", "small-qwen-4090": "vast"}


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    service = start_llamacpp(str(tmp_path_factory.mktemp("llamacpp") / "server.log"))
    yield service.url
    service.stop()


def _priced(plan, dep, offer, scaling):
    """``dep`` moved to the catalog ``offer`` the fakes rent and priced as the planner prices it
    (``Option.from_plan`` / ``billed``: the plan's own work terms, the offer's price and its
    provider's scaling terms), so plan.json's billed estimate is the planner's for what the
    fakes rent."""
    terms = json.loads(json.dumps(dep["cost_terms"]))
    terms["price_per_hour_usd"] = float(offer["price_per_hour"]) * dep["gpu"]["count"]
    entry = scaling[offer["provider"]]
    terms["scaling"].update(dict((k, v) for k, v in entry.items() if k not in ("id", "source", "as_of")))
    terms["scaling"]["wake_policy"] = POLICIES[dep["name"]]
    dep = dict(dep, cost_terms=terms, offer_id=offer["id"], provider=offer["provider"],
               pricing=offer["pricing"], region=offer["region"], country=offer.get("country"),
               price_per_hour_usd=terms["price_per_hour_usd"])
    opt = _planner.Option.from_plan(dep)
    billing = _planner.Billing(terms["scaling"]["window_h"], terms["scaling"]["usage"])
    tokens = [plan["roles"][role]["tokens"] for role in dep["roles"]]
    hours, _cost = opt.block(sum(t["input"] for t in tokens), sum(t["output"] for t in tokens),
                             billing=billing, roles=tuple(dep["roles"]))
    dep["scaling"], billed = opt.billed(hours * 3600.0 - opt.cold_s, billing, dep["roles"])
    always = _planner._always_on(opt, hours, billing.window_h)  # pylint: disable=protected-access
    dep["billed"] = _planner._billed_doc(opt, billed, always, dep["scaling"])  # pylint: disable=protected-access
    dep["hours"], dep["cost_usd"] = round(hours, 3), round(billed["cost_usd"], 4)
    dep["disk"] = _planner.disk_doc(opt)   # the disks gpu_provision rents: what was priced
    dep["work_s"] = hours * 3600.0 - opt.cold_s
    return dep


def _plan(tmp):
    """The planner's plan, split over RunPod and Vast.ai (split_plan), each deployment priced
    at the catalog offer the fakes rent; the wake timeout widened for the fake machines' boot."""
    plan = split_plan(plan_blueprint(tmp))
    offers, scaling = catalog_offers(True)
    catalog = dict((o["id"], o) for o in offers)
    big, small = plan["deployments"]
    # big: split_plan's RunPod option (on demand) as the primary; small: the Vast.ai RTX 4090.
    alternatives = [a for a in big["alternatives"] if a["provider"] == "runpod"]
    big = dict(big, gpu=alternatives[0]["gpu"], alternatives=alternatives)
    deployments = [_priced(plan, big, catalog[alternatives[0]["offer_id"]], scaling),
                   _priced(plan, small, catalog["vast:RTX 4090:on_demand"], scaling)]
    work = {}
    for dep in deployments:
        work[dep["name"]] = dep.pop("work_s")
        dep["scaling"]["wake_timeout_s"] = WAKE_TIMEOUT_S
    plan["deployments"] = deployments
    plan["totals"] = dict(plan["totals"], cost_usd=round(sum(d["cost_usd"] for d in deployments), 4),
                          always_on_cost_usd=round(sum(d["billed"]["always_on_cost_usd"] for d in deployments), 4))
    path = tmp / "plan.json"
    path.write_text(json.dumps(plan, indent=2))
    return plan, path, work


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
    """Every alias asks again and again (one client each, concurrently) until ``until(alias)``
    (a time.time() deadline, None while not known yet)."""
    results = []
    lock = threading.Lock()

    def loop(alias):
        while True:
            outcome = _ask(stack, alias)
            with lock:
                results.append((alias, False) + outcome)
            deadline = until(alias)
            if deadline is not None and time.time() >= deadline:
                return
    threads = [threading.Thread(target=loop, args=(a,)) for a in ALIASES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    return results


def _after_wake(status, deployment_of, shares, started):
    """until(alias) for _session: the end of the alias's deployment's wake (the waker's
    ``woken`` event after ``started``) plus its share of the planned work (wall seconds)."""
    woken = {}

    def until(alias):
        name = deployment_of[alias]
        if name not in woken:
            ends = [e["at"] for e in _get(status)["events"]
                    if e["event"] == "woken" and e["deployment"] == name and e["at"] >= started]
            if not ends:
                return None
            woken[name] = ends[0]
        return woken[name] + shares[alias]
    return until


def _wait_for(predicate, timeout, what):
    return wait_for(predicate, timeout, what, step=0.05)


def _segments(ledger, resource):
    return [line for line in ledger["lines"] if str(line["resource"]) == str(resource)]


def test_a_working_day_scales_to_zero_between_bursts_and_a_refused_resume_is_replaced(tmp_path, upstream):
    plan, plan_file, work = _plan(tmp_path)
    deps = dict((d["name"], d) for d in plan["deployments"])
    wakes_planned = dict((n, d["scaling"]["expected_wakes"]) for n, d in deps.items())
    bursts_n = max(wakes_planned.values())
    assert set(wakes_planned.values()) == {bursts_n}, wakes_planned   # one session a burst for both
    window_s = plan["deployments"][0]["cost_terms"]["scaling"]["window_h"] * 3600.0
    idle_s = dict((n, d["scaling"]["idle_timeout_s"]) for n, d in deps.items())
    # A wake loads for the plan's start: the first of the day stands for the deployment's first
    # (cold) start, later ones for a resume.
    cold = dict((n, float(d["cold_start_s"])) for n, d in deps.items())
    resume = dict((n, float(d["billed"]["resume_s"])) for n, d in deps.items())
    stack = CloudStack(tmp_path, upstream,
                       runpod_config={"catalog_prices": True, "resume_delay": cold["big-qwen-h100"]},
                       vast_config={"catalog_prices": True, "resume_delay": cold["small-qwen-4090"]})
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
        machines = dict((n, config["deployments"][n]["resource_id"]) for n in deps)
        rented = dict((r["attributes"]["deployment"], float(r["cost_per_hour"]))
                      for r in stack.state()["resources"] if r["provider"] in PROVIDERS.values())
        # The fakes rent at the catalog's prices: the plan's.
        assert rented == dict((n, d["price_per_hour_usd"]) for n, d in deps.items()), rented

        def all_stopped():
            return all(d["state"] == "stopped" for d in _get(status)["deployments"].values())
        _wait_for(all_stopped, 30, "both machines stopped after the route stage")

        # ------------------------------------------------------------ the day
        # plan.json's usage model: expected_wakes sessions over the deadline (window_h), each
        # the deployment's share of the planned work after its wake; the machines are stopped
        # in between, and the fakes' clocks jump over the stopped hours (billing them).
        fakes = {"runpod": stack.runpod, "vast": stack.vast}
        t0_wall = time.time()
        t0 = dict((p, f.clock.now()) for p, f in fakes.items())
        bursts = []
        for index in range(bursts_n):
            start = dict((p, f.clock.now()) for p, f in fakes.items())
            started = time.time()
            first = _burst_first(stack)
            shares = dict((a, work[plan["roles"][a]["deployment"]] / wakes_planned[plan["roles"][a]["deployment"]] / SCALE)
                          for a in ALIASES)
            rest = _session(stack, _after_wake(status, dict((a, plan["roles"][a]["deployment"]) for a in ALIASES),
                                               shares, started))
            end = dict((p, f.clock.now()) for p, f in fakes.items())
            bursts.append({"start": start, "end": end, "first": first, "rest": rest})
            _wait_for(all_stopped, 60, "both machines stopped after burst %d" % (index + 1))
            if index == 0:   # the next wakes are resumes
                stack.runpod.configure(resume_delay=resume["big-qwen-h100"])
                stack.vast.configure(resume_delay=resume["small-qwen-4090"])
            for provider, fake in fakes.items():
                target = t0[provider] + window_s * (index + 1) / bursts_n
                fake.configure(advance_s=max(0.0, target - fake.clock.now()))
        t_end = dict((p, f.clock.now()) for p, f in fakes.items())
        events = [e for e in _get(status)["events"] if e["at"] >= t0_wall]

        failed = [r for b in bursts for r in b["first"] + b["rest"] if r[2] != 200]
        assert failed == [], failed[:3]
        assert len(bursts[0]["first"]) == 9 and all(len(b["rest"]) >= 4 for b in bursts)
        # First requests: answered within the wake timeout, by the woken GPU (wait) or the
        # gateway's fallback (fallback).
        for burst in bursts:
            for alias, _stream, _code, seconds, _fallbacks, _text in burst["first"]:
                assert seconds < WAKE_TIMEOUT_S / SCALE + 10, (alias, seconds)
        # The first session's start is a cold start (seconds of wall time, longer than the
        # gateway's retries): the fallback deployment's first requests get the fallback's answer.
        fallback_aliases = [a for a in ALIASES if POLICIES[plan["roles"][a]["deployment"]] == "fallback"]
        first_fallbacks = [r[4] for r in bursts[0]["first"] if r[0] in fallback_aliases]
        assert first_fallbacks and all(f >= 1 for f in first_fallbacks), bursts[0]["first"]
        wakes = dict((name, [e for e in events if e["event"] == "woken" and e["deployment"] == name])
                     for name in machines)
        stops = dict((name, [e for e in events if e["event"] == "stopped" and e["deployment"] == name])
                     for name in machines)
        assert dict((n, len(w)) for n, w in wakes.items()) == wakes_planned, events
        assert dict((n, len(s)) for n, s in stops.items()) == wakes_planned, events
        assert all("idle for" in e["reason"] for s in stops.values() for e in s)
        assert [e for e in events if e["event"] in ("wake_failed", "stop_failed")] == []

        # Every machine stopped in every gap, as the providers' ledgers show.
        ledgers = {"runpod": stack.runpod.snapshot()["ledger"], "vast": stack.vast.snapshot()["ledger"]}
        for name, resource in machines.items():
            provider = PROVIDERS[name]
            lines = _segments(ledgers[provider], resource)
            for before, after in zip(bursts, bursts[1:]):
                gap = (before["end"][provider] + idle_s[name] + 300, after["start"][provider])
                assert gap[1] > gap[0]
                running = [l for l in lines if l["kind"] == "gpu" and l["start"] < gap[1] and l["end"] > gap[0]]
                assert running == [], (name, gap, running)
                assert any(l["kind"] == "storage" and l["start"] <= gap[0] and l["end"] >= gap[1] for l in lines)

        # The ledger over the plan's window (the deadline) against plan.json's billed estimate.
        billed = {}
        for name, resource in machines.items():
            provider = PROVIDERS[name]
            for line in _segments(ledgers[provider], resource):
                start, end = max(line["start"], t0[provider]), min(line["end"], t0[provider] + window_s)
                if end > start:
                    key = (name, line["kind"])
                    billed[key] = billed.get(key, 0.0) + (end - start) * line["usd_per_hour"] / 3600.0
        per_dep = dict((n, sum(v for (d, _k), v in billed.items() if d == n)) for n in machines)
        report = {
            "plan_usd": dict((n, d["cost_usd"]) for n, d in deps.items()),
            "plan_total_usd": plan["totals"]["cost_usd"],
            "plan_always_on_usd": plan["totals"]["always_on_cost_usd"],
            "ledger_usd": dict((n, round(v, 4)) for n, v in per_dep.items()),
            "ledger_total_usd": round(sum(per_dep.values()), 4),
            "ledger_by_kind_usd": dict(("%s/%s" % k, round(v, 4)) for k, v in sorted(billed.items())),
            "plan_up_hours": dict((n, d["billed"]["up_hours"]) for n, d in deps.items()),
            "ledger_up_hours": dict((n, round(sum(min(l["end"], t0[PROVIDERS[n]] + window_s) - max(l["start"], t0[PROVIDERS[n]])
                                                  for l in _segments(ledgers[PROVIDERS[n]], r)
                                                  if l["kind"] == "gpu" and l["end"] > t0[PROVIDERS[n]]) / 3600.0, 3))
                                    for n, r in machines.items()),
            "window_h": window_s / 3600.0, "clock_scale": SCALE,
            "wakes": dict((n, len(w)) for n, w in wakes.items()), "expected_wakes": wakes_planned,
            "wake_wall_s": dict((n, [e["wall_s"] for e in w]) for n, w in wakes.items()),
            "first_request_s": [round(r[3], 3) for b in bursts for r in b["first"]],
            "first_request_fallbacks": sum(1 for b in bursts for r in b["first"] if r[4]),
            "requests": sum(len(b["first"]) + len(b["rest"]) for b in bursts)}
        (tmp_path / "session.json").write_text(json.dumps(report, indent=2))
        results = os.environ.get("CODESTACK_SESSION_REPORT")
        if results:
            with open(results, "w") as handle:
                json.dump(report, handle, indent=2)
        print("simulated day:", json.dumps(report))
        for name in machines:
            assert per_dep[name] == pytest.approx(deps[name]["cost_usd"], rel=0.25), report
        assert sum(per_dep.values()) == pytest.approx(plan["totals"]["cost_usd"], rel=0.25), report
        assert t_end["runpod"] >= t0["runpod"] + window_s - 1

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
