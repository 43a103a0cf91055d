import importlib.util
import json
import os
import types

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "budget_guard",
                      "files", "codestack_budget_guard.py")
spec = importlib.util.spec_from_file_location("codestack_budget_guard", SCRIPT)
guard_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(guard_mod)

METRICS = """# HELP litellm_spend_metric_total Total spend on LLM requests
# TYPE litellm_spend_metric_total counter
litellm_spend_metric_total{model="coder",team="None"} 0.25
litellm_spend_metric_total{model="architect",team="None"} 0.5
litellm_total_tokens_metric_total{model="coder"} 1234
"""


def test_token_spend_sums_only_the_spend_counter():
    assert guard_mod.token_spend(METRICS) == pytest.approx(0.75)
    assert guard_mod.token_spend("") == 0.0


def test_gpu_spend_counts_hours_until_now_or_stop():
    start = guard_mod.parse_time("2026-11-22T08:00:00Z")
    resources = [
        {"provider": "runpod", "id": "a", "cost_per_hour": 2.0, "created_at": "2026-11-22T08:00:00Z"},
        {"provider": "vast", "id": "b", "cost_per_hour": 1.0, "created_at": "2026-11-22T08:00:00Z",
         "stopped_at": "2026-11-22T08:30:00Z"},
    ]
    total, lines, bad = guard_mod.gpu_spend(resources, start + 3600)
    assert total == pytest.approx(2.0 + 0.5)
    assert [line["hours"] for line in lines] == [1.0, 0.5]
    assert bad == []


@pytest.mark.parametrize("record,error", [
    ({"provider": "runpod", "id": "x", "cost_per_hour": 1.0}, "lacks created_at"),
    ({"provider": "runpod", "id": "x", "cost_per_hour": 1.0, "created_at": "yesterday"}, "does not match format"),
    ({"provider": "runpod", "id": "x", "cost_per_hour": "a lot", "created_at": "2026-11-22T08:00:00Z"}, "could not convert"),
    ({"provider": "runpod", "id": "x", "created_at": "2026-11-22T08:00:00Z", "stopped_at": 5}, "must be str"),
    ("pod-7", "not an object"),
])
def test_gpu_spend_skips_and_lists_a_bad_record(record, error):
    good = {"provider": "vast", "id": "b", "cost_per_hour": 1.0, "created_at": "2026-11-22T08:00:00Z"}
    total, lines, bad = guard_mod.gpu_spend([record, good], guard_mod.parse_time("2026-11-22T10:00:00Z"))
    assert total == pytest.approx(2.0) and [line["id"] for line in lines] == ["b"]
    assert len(bad) == 1 and bad[0]["index"] == 0 and error in bad[0]["error"]


@pytest.mark.parametrize("spent,warned,enforced,level", [
    (10, False, False, "ok"),
    (80, False, False, "warn"),
    (90, True, False, "ok"),
    (100, True, False, "enforce"),
    (120, False, False, "enforce"),
    (130, True, True, "enforced"),
])
def test_evaluate_levels(spent, warned, enforced, level):
    assert guard_mod.evaluate(100.0, spent, 0.8, warned, enforced)[0] == level


def config(tmp_path, **settings):
    path = tmp_path / "guard.json"
    path.write_text(json.dumps(settings))
    return guard_mod.load_config(str(path))


def test_config_rejects_missing_and_bad_values(tmp_path):
    with pytest.raises(ValueError, match="lacks budget"):
        config(tmp_path, state_file="s", status_file="t")
    with pytest.raises(ValueError, match="stop or destroy"):
        config(tmp_path, state_file="s", status_file="t", budget=1, action="explode")


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def test_guard_warns_once_then_enforces_at_budget(tmp_path):
    created = "2026-11-22T08:00:00Z"
    t0 = guard_mod.parse_time(created)
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"stack_id": "s", "resources": [
        {"provider": "runpod", "id": "pod1", "kind": "pod", "cost_per_hour": 1.0, "created_at": created}]}))
    calls = []

    def runner(cmd, **kwargs):
        calls.append(cmd)
        return types.SimpleNamespace(returncode=0, stdout="stopped", stderr="")

    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10,
                  warn_ratio=0.8, action="stop", stop_command=["ansible-playbook", "-e", "x=1"],
                  metrics_url="http://127.0.0.1:1/metrics")
    clock = Clock(t0 + 3600 * 5)
    guard = guard_mod.Guard(args, clock=clock, runner=runner, fetch=lambda url: METRICS)
    assert guard.check()["level"] == "ok"                 # 5 h + 0.75 = 5.75
    clock.now = t0 + 3600 * 7.5                            # 8.25 USD: 82 %
    status = guard.check()
    assert status["level"] == "warn" and status["warned"] and calls == []
    clock.now = t0 + 3600 * 8.5                            # 9.25: warned already
    assert guard.check()["level"] == "ok"
    clock.now = t0 + 3600 * 9.3                            # 10.05 USD
    status = guard.check()
    assert status["level"] == "enforce" and status["enforced"]
    assert calls == [["ansible-playbook", "-e", "x=1"]]
    assert [e["kind"] for e in status["events"]] == ["warn", "stop"]
    assert "reached the 10.00 USD budget" in status["events"][-1]["message"]
    clock.now += 3600
    assert guard.check()["level"] == "enforced" and len(calls) == 1
    assert oct(os.stat(tmp_path / "g.json").st_mode & 0o777) == "0o600"


def test_guard_keeps_last_token_figure_when_gateway_unreachable(tmp_path):
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"stack_id": "s", "resources": []}))
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10,
                  metrics_url="http://x/metrics")
    guard_mod.Guard(args, clock=Clock(0), fetch=lambda url: METRICS).check()

    def broken(url):
        raise OSError("connection refused")

    status = guard_mod.Guard(args, clock=Clock(10), fetch=broken).check()
    assert status["token_usd"] == 0.75 and "refused" in status["metrics_error"]


def _resource(cost=1.0, created="2026-11-22T08:00:00Z", **extra):
    res = {"provider": "runpod", "id": "pod1", "kind": "pod", "cost_per_hour": cost, "created_at": created}
    res.update(extra)
    return res


@pytest.mark.parametrize("content,reason", [
    (None, "cannot read the state file"),
    (b"{not json", "is not JSON"),
    (b"\xff\xfe", "is not JSON"),
    (b'{"resources": {"pod1": {}}}', "has no list of resources"),
    (b"[]", "has no list of resources"),
])
def test_missing_or_unreadable_state_file_is_an_alarm_not_ok(tmp_path, content, reason):
    state = tmp_path / "state.json"
    if content is not None:
        state.write_bytes(content)
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10)
    guard = guard_mod.Guard(args, clock=Clock(guard_mod.parse_time("2026-11-22T09:00:00Z")),
                            fetch=lambda url: "")
    status = guard.check()
    assert status["level"] == "alarm" and reason in status["state_error"]
    assert [e["kind"] for e in status["events"]] == ["alarm"]
    # Said again on every check, recorded once per reason.
    assert guard.check()["level"] == "alarm" and len(guard.check()["events"]) == 1


def test_alarm_keeps_the_last_gpu_figure_and_clears_when_the_state_returns(tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"resources": [_resource()]}))
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10)
    clock = Clock(guard_mod.parse_time("2026-11-22T10:00:00Z"))
    guard = guard_mod.Guard(args, clock=clock, fetch=lambda url: "")
    assert guard.check()["gpu_usd"] == 2.0
    state.unlink()
    clock.now += 3600
    status = guard.check()
    assert status["level"] == "alarm" and status["gpu_usd"] == 2.0 and status["spent_usd"] == 2.0
    state.write_text(json.dumps({"resources": [_resource()]}))
    status = guard.check()
    assert status["level"] == "ok" and status["state_error"] is None and status["gpu_usd"] == 3.0


def test_alarm_still_enforces_when_the_known_spend_reaches_the_budget(tmp_path):
    calls = []

    def runner(cmd, **kwargs):
        calls.append(cmd)
        return types.SimpleNamespace(returncode=0, stdout="", stderr="")

    args = config(tmp_path, state_file=str(tmp_path / "gone.json"), status_file=str(tmp_path / "g.json"),
                  budget=0.5, stop_command=["teardown"], metrics_url="http://x/metrics")
    status = guard_mod.Guard(args, clock=Clock(0), runner=runner, fetch=lambda url: METRICS).check()
    assert status["level"] == "enforce" and calls == [["teardown"]]


def test_bad_record_is_reported_once_and_the_rest_is_counted(tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"resources": [_resource(), _resource(created="soon", id="pod2")]}))
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10)
    guard = guard_mod.Guard(args, clock=Clock(guard_mod.parse_time("2026-11-22T10:00:00Z")), fetch=lambda url: "")
    status = guard.check()
    assert status["level"] == "ok" and status["gpu_usd"] == 2.0
    assert status["bad_records"] == [{"index": 1, "id": "pod2", "error": status["bad_records"][0]["error"]}]
    assert [e["kind"] for e in status["events"]] == ["bad_record"] and "pod2" in status["events"][0]["message"]
    assert [e["kind"] for e in guard.check()["events"]] == ["bad_record"]


def test_main_exits_2_on_an_alarm_and_the_loop_survives_errors(tmp_path, monkeypatch, capsys):
    settings = tmp_path / "guard.json"
    settings.write_text(json.dumps({"state_file": str(tmp_path / "missing.json"),
                                    "status_file": str(tmp_path / "g.json"), "budget": 10}))
    assert guard_mod.main(["--config", str(settings)]) == 2
    assert "alarm: cannot read the state file" in capsys.readouterr().out

    checks = []

    def flaky(self):
        checks.append(1)
        if len(checks) == 1:
            raise KeyError("boom")
        return {"enforced": True}

    monkeypatch.setattr(guard_mod.Guard, "check", flaky)
    monkeypatch.setattr(guard_mod.time, "sleep", lambda seconds: None)
    assert guard_mod.main(["--config", str(settings), "--loop", "1"]) == 0
    assert len(checks) == 2 and "error: KeyError: 'boom'" in capsys.readouterr().err


def test_running_hours_leave_out_stopped_intervals_and_storage_counts_both_ways():
    t0 = guard_mod.parse_time("2026-11-22T08:00:00Z")
    resumed = {"provider": "runpod", "id": "a", "kind": "pod", "cost_per_hour": 2.0,
               "created_at": "2026-11-22T08:00:00Z", "attributes": {"deployment": "coder-dep"},
               # stopped 09:00-12:00 by the waker, resumed, stopped again at 13:00
               "stopped_intervals": [["2026-11-22T09:00:00Z", "2026-11-22T12:00:00Z"]],
               "stopped_at": "2026-11-22T13:00:00Z"}
    storage = {"coder-dep": {"gb": 40, "running_usd_per_gb_hour": 0.001,
                             "stopped_usd_per_gb_hour": 0.002}}
    total, lines, bad = guard_mod.gpu_spend([resumed], t0 + 3600 * 7, storage)
    # ran 08-09 and 12-13 (2 h), stopped 09-12 and 13-15 (5 h)
    assert bad == [] and lines[0]["hours"] == 2.0 and lines[0]["stopped_hours"] == 5.0
    assert lines[0]["storage_usd"] == pytest.approx(40 * (0.001 * 2 + 0.002 * 5))
    assert total == pytest.approx(2 * 2.0 + 40 * (0.001 * 2 + 0.002 * 5))
    # without storage terms the stopped machine costs nothing more
    assert guard_mod.gpu_spend([resumed], t0 + 3600 * 7)[0] == pytest.approx(4.0)
    # a container disk (erased at each stop) is billed while the pod runs only
    storage["coder-dep"]["running_gb"] = 60
    assert guard_mod.gpu_spend([resumed], t0 + 3600 * 7, storage)[1][0]["storage_usd"] == pytest.approx(
        60 * 0.001 * 2 + 40 * 0.002 * 5)


def test_serverless_spend_comes_from_runpod_billing_history_not_hours(tmp_path):
    created = "2026-11-22T08:00:00Z"
    t0 = guard_mod.parse_time(created)
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"stack_id": "s", "resources": [
        {"provider": "runpod_serverless", "id": "ep1", "kind": "endpoint", "cost_per_hour": 1.12,
         "created_at": created}]}))
    asked = []

    def billing(url, key):
        asked.append((url, key))
        # RunPod's documented record shape (GET /v1/billing/endpoints)
        return [{"amount": 0.0412, "diskSpaceBilledGb": 0, "endpointId": "ep1",
                 "gpuTypeId": "ADA_24", "podId": None, "time": "2026-11-22T00:00:00Z",
                 "timeBilledMs": 133000}]

    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=10,
                  command_env={"RUNPOD_API_KEY": "rk"}, runpod_billing_url="http://fake/v1")
    guard = guard_mod.Guard(args, clock=Clock(t0 + 3600 * 24), fetch=lambda url: "",
                            fetch_billing=billing)
    status = guard.check()
    # a day of an endpoint at 1.12 USD/h would be 26.88 USD; it was billed 133 worker-seconds
    assert status["spent_usd"] == pytest.approx(0.0412) and status["billing_error"] is None
    assert status["level"] == "ok"
    assert [r for r in status["resources"] if r["id"] == "ep1"] == [
        {"provider": "runpod_serverless", "id": "ep1", "billed_s": 133.0, "usd": 0.0412}]
    url, key = asked[0]
    assert url.startswith("http://fake/v1/billing/endpoints?") and "endpointId=ep1" in url
    assert key == "rk" and "rk" not in url

    def down(url, key):
        raise OSError("connection refused")

    guard.fetch_billing = down
    status = guard.check()
    assert status["spent_usd"] == pytest.approx(0.0412) and "refused" in status["billing_error"]


def test_serverless_spend_reads_rest_v2_by_default(tmp_path):
    """REST v1 was retired on 2026-11-15: the default base is REST v2, whose answer is
    {"records": [{totalAmount, serverlessId, ...}]}; other endpoints' records do not count."""
    args = guard_mod.load_config(_write_config(tmp_path), {})
    assert args.runpod_billing_url == "https://api.runpod.io/v2"
    url = guard_mod.billing_url(args.runpod_billing_url, "ep1")
    assert url.startswith("https://api.runpod.io/v2/billing/serverless?") and "serverlessId=ep1" in url
    answer = {"records": [
        {"totalAmount": 0.03, "serverlessId": "ep1", "startTime": "2026-11-22T00:00:00Z", "timeBilledMs": 97000},
        {"totalAmount": 0.01, "serverlessId": "ep1", "startTime": "2026-11-23T00:00:00Z"},
        {"totalAmount": 5.0, "serverlessId": "other", "startTime": "2026-11-22T00:00:00Z"}]}
    usd, seconds = guard_mod.billing_records(answer, "ep1")
    assert (usd, seconds) == (pytest.approx(0.04), pytest.approx(97.0))
    total, lines = guard_mod.serverless_spend(
        [{"provider": "runpod_serverless", "kind": "endpoint", "id": "ep1"}], args.runpod_billing_url,
        "rk", fetch=lambda u, k: answer)
    assert total == pytest.approx(0.04) and lines[0]["billed_s"] == 97.0
    with pytest.raises(ValueError):
        guard_mod.billing_records({"records": ["junk"]}, "ep1")


def _write_config(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"state_file": "s", "status_file": "t", "budget": 1}))
    return str(path)


METRICS_BOTH = """# TYPE litellm_spend_metric_total counter
litellm_spend_metric_total{api_provider="hosted_vllm",model="hosted_vllm/qwen",model_id="architect--big-h100"} 1.5
litellm_spend_metric_total{api_provider="openai",model="openai/coder",model_id="coder--small-4090"} 0.25
litellm_spend_metric_total{api_provider="openrouter",model="openrouter/x",model_id="reviewer--api-or"} 0.1
litellm_spend_metric_total{api_provider="deepseek",model="deepseek/chat",model_id="debugger--api-ds",team="a \\"b\\""} 0.05
"""


def test_token_spend_leaves_out_the_routes_the_providers_bill():
    # the gateway prices self-hosted routes per second; their cost is the provider's bill
    assert guard_mod.token_spend(METRICS_BOTH, ["big-h100", "small-4090"]) == pytest.approx(0.15)
    # hosted_vllm is always a self-hosted route, even without the list
    assert guard_mod.token_spend(METRICS_BOTH) == pytest.approx(0.4)


def test_a_pod_route_is_counted_once_by_the_guard(tmp_path):
    """A pod billed 2 USD/h for an hour and its route's 1.5 USD in the gateway's spend metric:
    the guard's spend is the pod's bill plus the per-token API's, not both."""
    created = "2026-11-22T08:00:00Z"
    state = tmp_path / "stack.json"
    state.write_text(json.dumps({"stack_id": "s", "resources": [
        {"provider": "runpod", "id": "p1", "kind": "pod", "cost_per_hour": 2.0, "created_at": created,
         "attributes": {"deployment": "big-h100"}}]}))
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=100,
                  metrics_url="http://gw/metrics", provider_billed=["big-h100", "small-4090"])
    guard = guard_mod.Guard(args, clock=Clock(guard_mod.parse_time(created) + 3600),
                            fetch=lambda url: METRICS_BOTH)
    status = guard.check()
    assert status["gpu_usd"] == pytest.approx(2.0) and status["token_usd"] == pytest.approx(0.15)
    assert status["spent_usd"] == pytest.approx(2.15)


def _requests(count):
    return METRICS + (
        '# TYPE litellm_deployment_total_requests_total counter\n'
        'litellm_deployment_total_requests_total{api_provider="hosted_vllm",model_id="coder--k8s-dep",'
        'requested_model="coder"} %s\n'
        'litellm_deployment_total_requests_total{model_id="coder--other"} 99\n' % count)


def test_a_plan_on_a_priced_cluster_alone_is_guarded_at_its_internal_price(tmp_path):
    """KEDA keeps the node up from a burst until its scaledown period after it: a check that
    sees new requests counts the interval since the previous check, then the idle tail; no
    request, nothing more. The cluster's routes are left out of the token spend."""
    from ansible_collections.llmops.codestack.plugins.module_utils import _stack
    plan = {"deployments": [
        {"name": "k8s-dep", "provider": "kubernetes", "price_per_hour_usd": 2.0,
         "scaling": {"mode": "keda", "idle_timeout_s": 300}},
        {"name": "free-dep", "provider": "kubernetes", "price_per_hour_usd": 0.0},
        {"name": "pod", "provider": "runpod", "price_per_hour_usd": 3.0}]}
    clusters = _stack.plan_clusters(plan)
    assert clusters == {"k8s-dep": {"usd_per_hour": 2.0, "idle_timeout_s": 300}}
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"stack_id": "s", "resources": [
        {"provider": "kubernetes", "kind": "deployment", "id": "c/ns/k8s-dep", "cost_per_hour": 0,
         "created_at": "2026-11-22T08:00:00Z", "attributes": {"deployment": "k8s-dep"}}]}))
    args = config(tmp_path, state_file=str(state), status_file=str(tmp_path / "g.json"), budget=100,
                  metrics_url="http://x/metrics", clusters=clusters, provider_billed=["k8s-dep"])
    clock, seen = Clock(guard_mod.parse_time("2026-11-22T09:00:00Z")), {"count": 0}
    guard = guard_mod.Guard(args, clock=clock, fetch=lambda url: _requests(seen["count"]))

    def check(after_s, count):
        clock.now += after_s
        seen["count"] = count
        return guard.check()

    assert check(0, 0)["cluster_usd"] == 0.0              # nothing served yet
    assert check(600, 5)["cluster_usd"] == pytest.approx(2.0 * 600 / 3600)   # a burst: the interval
    status = check(120, 5)                                 # idle: within the 300 s tail
    assert status["cluster_usd"] == pytest.approx(2.0 * 720 / 3600)
    status = check(3600, 5)                                # the rest of the tail, then stopped
    assert status["cluster_usd"] == pytest.approx(2.0 * 900 / 3600)
    assert status["token_usd"] == 0.75 and status["spent_usd"] == pytest.approx(0.75 + 0.5)
    line = [l for l in status["resources"] if l["provider"] == "kubernetes" and l["id"] == "k8s-dep"]
    assert line == [{"provider": "kubernetes", "id": "k8s-dep", "hours": 0.25, "usd": 0.5}]
    assert check(60, 0)["cluster_usd"] == pytest.approx(2.0 * 960 / 3600)   # a restarted gateway: active
