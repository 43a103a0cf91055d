"""The calibration run against a tiny local streaming server (stdlib http.server, free port)."""

import copy
import json
import os
import stat
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import load_blueprint
from ansible_collections.llmops.codestack.plugins.module_utils._calibrate import (
    CalibrationError,
    Calibrator,
    append_measurements,
    calibrate,
    render_markdown,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
from ansible_collections.llmops.codestack.plugins.module_utils._http import HttpClient
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    build_plan,
    reprice_deployment,
)

from _planner_helpers import BLUEPRINTS

TOKEN_GAP = 0.02     # seconds between two content chunks of the fake stream
FIRST_DELAY = 0.15   # seconds before the first content chunk
# the catalog's measured CPU figures the plan is priced with (benchmarks/cpu_throughput.py)
LOCAL = load_catalog().measurements["local:cpu:owned/smollm2-135m/q4_1"]


class FakeGateway(BaseHTTPRequestHandler):
    """Answers POST /v1/chat/completions with the next scripted reply (default: a stream)."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        server.calls.append({"path": self.path, "body": body,
                             "auth": self.headers.get("Authorization")})
        reply = server.script.pop(0) if server.script else "stream"
        if isinstance(reply, int):
            payload = json.dumps({"error": {"message": "scripted %d" % reply}}).encode()
            self.send_response(reply)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            if reply == 503:
                self.send_header("Retry-After", "0")
            self.end_headers()
            self.wfile.write(payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        tokens = server.tokens

        def event(obj):
            self.wfile.write(("data: %s\n\n" % json.dumps(obj)).encode())
            self.wfile.flush()
        event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
        time.sleep(FIRST_DELAY)
        for index in range(tokens):
            if index:
                time.sleep(TOKEN_GAP)
            event({"choices": [{"index": 0, "delta": {"content": "%d\n" % index}}]})
        if reply == "error":
            event({"error": {"message": "backend died"}})
            return
        event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
        if reply in ("stream", "low-usage"):
            reported = tokens if reply == "stream" else tokens - 2
            event({"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": reported,
                                            "total_tokens": 30 + reported}})
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def gateway():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeGateway)
    server.calls, server.script, server.tokens = [], [], 11
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.url = "http://127.0.0.1:%d" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def calibrator(gateway, **kwargs):
    sleeps = []
    client = HttpClient(gateway.url + "/v1", token="sk-test", timeout=10, retries=3,
                        sleep=sleeps.append)
    cal = Calibrator(gateway.url, "sk-test", client=client, **kwargs)
    cal.sleeps = sleeps
    return cal


@pytest.fixture(scope="module")
def plan():
    catalog = load_catalog()
    bp = load_blueprint(os.path.join(BLUEPRINTS, "small-cli.yml"))
    return build_plan(bp, estimate(bp, catalog), catalog, generated_at="2026-11-29T10:00:00Z")


def test_one_sample_measures_ttft_and_decode_from_usage(gateway):
    sample = calibrator(gateway).sample("coder", 0)
    assert sample["tokens_from"] == "usage"
    assert sample["completion_tokens"] == 11 and sample["prompt_tokens"] == 30
    assert FIRST_DELAY <= sample["ttft_s"] < FIRST_DELAY + 1.0
    # 10 tokens after the first, TOKEN_GAP apart: at most 50 tok/s, less when the host is slow
    assert 15 < sample["decode_tok_s"] <= 1.0 / TOKEN_GAP * 1.05
    call = gateway.calls[0]
    assert call["path"] == "/v1/chat/completions" and call["auth"] == "Bearer sk-test"
    assert call["body"]["stream"] is True
    assert call["body"]["stream_options"] == {"include_usage": True}
    assert call["body"]["model"] == "coder"


def test_without_usage_the_content_chunks_are_counted(gateway):
    gateway.script = ["no-usage"]
    sample = calibrator(gateway).sample("coder", 0)
    assert sample["tokens_from"] == "chunks" and sample["completion_tokens"] == 11
    assert sample["prompt_tokens"] is None and sample["decode_tok_s"] > 0


def test_a_single_token_gives_no_decode_rate(gateway):
    gateway.tokens = 1
    sample = calibrator(gateway).sample("coder", 0)
    assert sample["decode_tok_s"] is None and sample["ttft_s"] >= FIRST_DELAY


def test_401_fails_at_once_with_one_clear_message(gateway):
    gateway.script = [401]
    cal = calibrator(gateway)
    with pytest.raises(CalibrationError) as err:
        cal.sample("coder", 0)
    assert err.value.status == 401
    assert str(err.value) == ("the gateway refused the key (HTTP 401) for alias 'coder': pass "
                              "the LiteLLM master key as api_key")
    assert len(gateway.calls) == 1 and cal.sleeps == []


def test_503_then_success_is_retried(gateway):
    gateway.script = [503, "stream"]
    cal = calibrator(gateway)
    sample = cal.sample("coder", 0)
    assert sample["completion_tokens"] == 11
    assert len(gateway.calls) == 2 and len(cal.sleeps) == 1


def test_persistent_500_names_the_alias(gateway):
    gateway.script = [500]
    with pytest.raises(CalibrationError) as err:
        calibrator(gateway).sample("reviewer", 0)
    assert err.value.status == 500 and "alias 'reviewer'" in str(err.value)
    assert "scripted 500" in str(err.value)


def test_an_error_inside_the_stream_fails(gateway):
    gateway.script = ["error"]
    with pytest.raises(CalibrationError, match="alias 'coder': the stream ended with an error: "
                                               "backend died"):
        calibrator(gateway).sample("coder", 0)


def test_nothing_listens(gateway):
    url = gateway.url
    gateway.shutdown()
    gateway.server_close()
    client = HttpClient(url + "/v1", token="k", timeout=2, retries=1, sleep=lambda s: None)
    with pytest.raises(CalibrationError, match="cannot reach"):
        Calibrator(url, "k", client=client).sample("coder", 0)


def test_calibrate_medians_ratios_and_repricing(gateway, plan):
    cal = calibrator(gateway, requests=3)
    result = calibrate(plan, cal)
    dep = plan["deployments"][0]
    assert len(result["calibration"]) == 4
    # four aliases, one deployment: per alias two uncounted warm-ups and 3 measured requests
    assert len(gateway.calls) == 20
    assert [c["body"]["max_tokens"] for c in gateway.calls[:5]] == [2, 2, 64, 64, 64]
    # every request's prompt differs (no shared cached prefix)
    assert len(set(c["body"]["messages"][0]["content"] for c in gateway.calls[:5])) == 5
    route = result["calibration"][1]
    assert (route["role"], route["alias"], route["deployment"]) == ("coder", "coder", dep["name"])
    assert (route["model"], route["quantization"]) == ("smollm2-135m", "q4_1")
    assert route["engine"] == "llamacpp"
    assert route["predicted"]["tok_s"] == dep["single_stream_tok_s"] == LOCAL.decode_tok_s
    # predicted TTFT for the 30-token prompt sent: 30 / prefill + 1 / decode
    assert route["predicted"]["ttft_s"] == round(30 / LOCAL.prefill_tok_s + 1 / LOCAL.decode_tok_s, 3)
    measured = route["measured"]
    assert measured["samples"] == 3 and measured["prompt_tokens"] == 30
    assert measured["tok_s"] > 0 and measured["ttft_s"] >= FIRST_DELAY
    assert abs(route["ratio"]["tok_s"] - measured["tok_s"] / LOCAL.decode_tok_s) < 0.01
    rep = result["plan_repriced"]
    assert rep["before"] == {"hours": dep["hours"], "cost_usd": dep["cost_usd"]}
    row = rep["deployments"][0]
    hours, cost = reprice_deployment(plan, dep, decode_tok_s=row["measured_tok_s"])
    assert abs(rep["after"]["hours"] - hours) < 0.01 and rep["after"]["cost_usd"] == 0.0
    # slower than predicted: more hours; faster: fewer
    slower = row["measured_tok_s"] < LOCAL.decode_tok_s
    assert (rep["after"]["hours"] > rep["before"]["hours"]) == slower
    [entry] = result["measurements"]
    assert entry["id"] == "local:cpu:owned/smollm2-135m/q4_1"
    assert (entry["gpu"], entry["gpu_count"], entry["engine"]) == ("cpu-local", 1, "llamacpp")
    assert entry["samples"] == 12 and entry["source"] == "calibration run codestack-todo-cli"
    md = render_markdown(plan, result)
    assert "## Predicted vs measured" in md
    assert "| coder | %s | 1x " % dep["name"] in md
    assert "| **total** |" in md


def test_reprice_without_overrides_gives_the_plan_back(plan):
    catalog = load_catalog()
    bp = load_blueprint(os.path.join(BLUEPRINTS, "medium-webapp.yml"))
    medium = build_plan(bp, estimate(bp, catalog), catalog)
    for dep in medium["deployments"] + plan["deployments"]:
        hours, cost = reprice_deployment(medium if dep in medium["deployments"] else plan, dep)
        assert abs(hours - dep["hours"]) < 0.002 and abs(cost - dep["cost_usd"]) < 0.0002


def test_a_plan_without_cost_terms_is_measured_but_not_repriced(plan):
    old = copy.deepcopy(plan)
    for dep in old["deployments"]:
        del dep["cost_terms"]

    class Fixed:
        def measure(self, alias):
            return [{"ttft_s": 0.2, "decode_tok_s": 40.0, "completion_tokens": 64,
                     "prompt_tokens": 30}]
    result = calibrate(old, Fixed(), roles=["coder"])
    assert result["calibration"][0]["measured"]["tok_s"] == 40.0
    assert "no cost_terms" in result["plan_repriced"]["note"]
    assert result["plan_repriced"]["after"] == result["plan_repriced"]["before"]


def test_check_mode_measures_nothing(plan):
    result = calibrate(plan, None)
    assert result["measurements"] == []
    assert all(r["measured"]["tok_s"] is None and r["measured"]["samples"] == 0
               for r in result["calibration"])
    assert result["calibration"][0]["predicted"]["ttft_s"] == plan["deployments"][0]["ttft_s"]
    assert render_markdown(plan, dict(result, skipped=True)).count("| - |") >= 4


def test_unknown_role():
    with pytest.raises(CalibrationError, match="not in the plan"):
        calibrate({"roles": {"coder": {}}, "deployments": []}, None, roles=["tester"])


def test_measurements_file_is_read_back_and_changes_the_plan(tmp_path, plan):
    """A measured figure replaces the modelled one: the planner's hours change."""
    path = str(tmp_path / "measurements.yml")
    entry = {"id": "local:cpu:owned/smollm2-135m/q4_1", "offer": "local:cpu:owned",
             "gpu": "cpu-local", "gpu_count": 1, "model": "smollm2-135m", "quantization": "q4_1",
             "engine": "llamacpp", "decode_tok_s": 20.0, "ttft_s": 0.3, "prompt_tokens": 30,
             "samples": 12, "measured_at": "2026-11-29T10:00:00Z", "as_of": "2026-11-29",
             "source": "calibration run codestack-todo-cli"}
    append_measurements(path, [entry])
    slow = round(LOCAL.decode_tok_s / 2, 1)   # slower than the catalog's figure: more hours
    append_measurements(path, [dict(entry, decode_tok_s=slow, measured_at="2026-11-29T11:00:00Z")])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    with open(path) as handle:
        doc = yaml.safe_load(handle)
    assert [m["decode_tok_s"] for m in doc["measurements"]] == [20.0, slow]   # history kept
    catalog = load_catalog(paths=[path])
    assert catalog.measurements[entry["id"]].decode_tok_s == slow            # the last wins
    bp = load_blueprint(os.path.join(BLUEPRINTS, "small-cli.yml"))
    learnt = build_plan(bp, estimate(bp, catalog), catalog)
    dep, before = learnt["deployments"][0], plan["deployments"][0]
    assert dep["single_stream_tok_s"] == slow and dep["throughput_source"] == "measured"
    # decode only was measured: the prefill stays what the catalog had
    assert dep["prefill_tok_s"] == before["prefill_tok_s"]
    assert dep["hours"] > before["hours"]
    assert learnt["totals"]["hours"] > plan["totals"]["hours"]


def test_a_gpu_measurement_prices_every_offer_of_that_gpu(tmp_path):
    catalog = load_catalog()
    offers = [o for o in catalog.offers.values() if o.gpu == "rtx4090" and o.count == 1]
    assert len(offers) > 1
    entry = {"id": "rtx4090/qwen2.5-coder-7b/awq", "gpu": "rtx4090", "model": "qwen2.5-coder-7b",
             "quantization": "awq", "decode_tok_s": 99.0, "source": "calibration run x",
             "as_of": "2026-11-29"}
    learnt = load_catalog(data=[{"measurements": [entry]}])
    for offer in offers:
        assert learnt.measurement_for(offer, "qwen2.5-coder-7b", "awq").decode_tok_s == 99.0
        assert learnt.measurement_for(offer, "qwen2.5-coder-7b", "fp16") is None


def test_a_measurement_needs_an_offer_or_a_gpu():
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import CatalogError
    entry = {"id": "x", "model": "smollm2-135m", "quantization": "q4_1", "decode_tok_s": 9.0,
             "source": "s", "as_of": "2026-11-29"}
    with pytest.raises(CatalogError, match="names neither an offer nor a gpu"):
        load_catalog(data=[{"measurements": [entry]}])


def test_append_refuses_a_file_that_is_not_a_measurements_catalog(tmp_path):
    path = tmp_path / "m.yml"
    path.write_text("measurements: {a: 1}\n")
    with pytest.raises(CalibrationError, match="not a catalog file"):
        append_measurements(str(path), [])


# The module, through AnsibleModule (same fake gateway).

def run_module(args, capsys):
    from ansible.module_utils.testing import patch_module_args
    from ansible_collections.llmops.codestack.plugins.modules import route_calibrate
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            route_calibrate.main()
    return json.loads(capsys.readouterr().out)


def test_module_check_mode_then_real(gateway, plan, tmp_path, capsys):
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    meas = tmp_path / "catalog" / "measurements.yml"
    args = {"api_endpoint": gateway.url + "/v1", "api_key": "sk-secret-key", "plan": str(plan_file),
            "roles": ["coder"], "requests": 2, "measurements_file": str(meas),
            "_ansible_check_mode": True}
    checked = run_module(args, capsys)
    assert checked["changed"] is False and checked["skipped"] is True
    assert gateway.calls == [] and not meas.exists()
    assert "Calibration skipped (check mode)" in checked["markdown"]
    args["_ansible_check_mode"] = False
    real = run_module(dict(args, plan=plan), capsys)
    assert real["changed"] is True and real["skipped"] is False
    assert len(gateway.calls) == 4   # two warm-ups, two measured
    assert real["calibration"][0]["measured"]["samples"] == 2
    assert stat.S_IMODE(os.stat(str(meas)).st_mode) == 0o644
    assert "sk-secret-key" not in json.dumps(real) and "sk-secret-key" not in meas.read_text()
    # nothing to record: the file is left alone
    no_file = run_module(dict(args, measurements_file=None), capsys)
    assert no_file["changed"] is False


def test_module_reports_401_once(gateway, plan, capsys):
    gateway.script = [401]
    result = run_module({"api_endpoint": gateway.url, "api_key": "sk-wrong", "plan": plan,
                         "roles": ["architect"]}, capsys)
    assert result["failed"] is True and result["status_code"] == 401
    assert "refused the key (HTTP 401) for alias 'architect'" in result["msg"]
    assert len(gateway.calls) == 1


def test_module_rejects_a_file_that_is_not_a_plan(tmp_path, capsys):
    bad = tmp_path / "plan.json"
    bad.write_text("{}")
    result = run_module({"api_key": "k", "plan": str(bad)}, capsys)
    assert result["failed"] is True and "must be a plan.json document" in result["msg"]


def test_a_usage_count_below_the_chunk_count_is_not_trusted(gateway):
    """LiteLLM estimates usage with its own tokenizer when the engine sends none."""
    gateway.script = ["low-usage"]
    sample = calibrator(gateway).sample("coder", 0)
    assert sample["completion_tokens"] == 11 and sample["tokens_from"] == "chunks"
    assert sample["prompt_tokens"] == 30


def test_without_prompt_tokens_the_ttft_is_not_compared(plan):
    class NoUsage:
        def measure(self, alias):
            return [{"ttft_s": 0.2, "decode_tok_s": 40.0, "completion_tokens": 64,
                     "prompt_tokens": None}]
    route = calibrate(plan, NoUsage(), roles=["coder"])["calibration"][0]
    dep = plan["deployments"][0]
    assert route["predicted"]["prompt_tokens"] == dep["ttft_prompt_tokens"] == 1000
    assert route["predicted"]["ttft_s"] == dep["ttft_s"]
    assert route["ratio"] == {"tok_s": round(40.0 / LOCAL.decode_tok_s, 3), "ttft_s": None}
