"""model_server_wait against an in-thread fake of vLLM's /v1/models and /metrics."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.llmops.codestack.plugins.modules import model_server_wait

METRICS = """# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="coder"} 0.0
vllm:num_requests_waiting{engine="0",model_name="coder"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="coder"} 0.0
vllm:time_to_first_token_seconds_bucket{le="0.001",model_name="coder"} 0.0
vllm:generation_tokens_total{model_name="coder"} 12.0
"""


class Fake:
    key = "sk-right"
    models_after = 0      # /v1/models answers 503 this many times first
    metrics = METRICS
    calls = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        fake = self.server.fake
        if self.headers.get("Authorization") != "Bearer " + fake.key:
            return self._send(401, json.dumps({"error": "Unauthorized"}))
        if self.path == "/v1/models":
            fake.calls += 1
            if fake.calls <= fake.models_after:
                return self._send(503, json.dumps({"error": "loading"}))
            return self._send(200, json.dumps({"object": "list", "data": [{"id": "coder"}]}))
        if self.path == "/metrics":
            return self._send(200, fake.metrics, "text/plain; version=0.0.4")
        return self._send(404, "{}")


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.fake = Fake()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def run(server, capsys):
    def _run(**overrides):
        args = {"url": "http://127.0.0.1:%d" % server.server_address[1], "api_key": "sk-right",
                "model": "coder", "metrics_required": ["vllm:num_requests_running",
                                                       "vllm:time_to_first_token_seconds"],
                "wait_timeout": 5, "wait_sleep": 0}
        args.update(overrides)
        with patch_module_args(args):
            with pytest.raises(SystemExit):
                model_server_wait.main()
        return json.loads(capsys.readouterr().out)
    return _run


def test_ready_server(run):
    result = run()
    assert result["changed"] is False
    assert result["model_server"]["models"] == ["coder"]
    assert result["model_server"]["metrics"] == ["vllm:num_requests_running",
                                                 "vllm:time_to_first_token_seconds"]
    assert "sk-right" not in json.dumps(result)


def test_waits_through_loading(run, server):
    server.fake.models_after = 3
    result = run()
    assert result["model_server"]["models"] == ["coder"]
    assert server.fake.calls == 4


def test_progress_reports_each_change_and_the_last_status_on_timeout(run, server):
    server.fake.models_after = 3
    result = run()
    lines = result["progress"]
    # one line per change: loading (503) while the server starts, then ready
    assert len(lines) == 2 and "503" in lines[0] and lines[-1].endswith(": ready")
    failed = run(model="architect", wait_timeout=0)
    assert failed["last_status"] == "model architect not listed yet (listed: coder)"
    assert failed["progress"][-1].endswith(failed["last_status"])


def test_missing_metric_times_out_with_the_reason(run):
    result = run(metrics_required=["vllm:num_requests_swapped"], wait_timeout=0)
    assert result["failed"] is True
    assert "vllm:num_requests_swapped" in result["msg"]


def test_wrong_model_name(run):
    result = run(model="architect", wait_timeout=0)
    assert result["failed"] is True
    assert "model architect not listed yet (listed: coder)" in result["msg"]


def test_wrong_key_fails_at_once(run, server):
    result = run(api_key="sk-wrong", wait_timeout=60)
    assert result["failed"] is True
    assert result["status_code"] == 401
    assert "API key" in result["msg"]
    assert "sk-wrong" not in json.dumps(result)


def test_nothing_listening(run):
    result = run(url="http://127.0.0.1:9", wait_timeout=0)
    assert result["failed"] is True
    assert "cannot reach" in result["msg"]
    assert result["progress"] == ["0s: not listening yet (connection refused)"]


def test_check_mode_probes_nothing(run, server):
    result = run(_ansible_check_mode=True)
    assert result["changed"] is False and "model_server" not in result
    assert server.fake.calls == 0


def _fake_systemctl(states, journal):
    """run_command replacement: successive `systemctl show` answers, then the journal."""
    answers = iter(states)

    def run_command(self, args, **kwargs):
        if args[0] == "systemctl":
            return 0, next(answers), ""
        if args[0] == "journalctl":
            return 0, journal, ""
        raise AssertionError(args)
    return run_command


def test_unit_dying_while_loading_fails_fast_with_log_lines(run, server, monkeypatch):
    server.fake.models_after = 1000
    loading = "ActiveState=active\nSubState=running\nNRestarts=0\nResult=success\n"
    crashed = "ActiveState=activating\nSubState=auto-restart\nNRestarts=1\nResult=exit-code\n"
    journal = "INFO loading weights\nRuntimeError: not enough memory\n"
    monkeypatch.setattr(AnsibleModule, "run_command", _fake_systemctl([loading, loading, crashed], journal))
    result = run(systemd_unit="vllm-coder.service", wait_timeout=60)
    assert result["failed"] is True
    assert "vllm-coder.service stopped while the model was loading" in result["msg"]
    assert "RuntimeError: not enough memory" in result["msg"]
    assert result["log_lines"][-1] == "RuntimeError: not enough memory"
    assert server.fake.calls == 2


def test_unit_failed_state(run, server, monkeypatch):
    server.fake.models_after = 1000
    failed = "ActiveState=failed\nSubState=failed\nNRestarts=0\nResult=exit-code\n"
    monkeypatch.setattr(AnsibleModule, "run_command", _fake_systemctl([failed], "boom\n"))
    result = run(systemd_unit="vllm-coder.service", wait_timeout=60)
    assert result["failed"] is True and "state failed/failed" in result["msg"]


def test_timeout_carries_journal(run, server, monkeypatch):
    server.fake.models_after = 1000
    ok = "ActiveState=active\nSubState=running\nNRestarts=0\nResult=success\n"
    monkeypatch.setattr(AnsibleModule, "run_command", _fake_systemctl([ok] * 10, "still loading\n"))
    result = run(systemd_unit="vllm-coder.service", wait_timeout=0)
    assert result["failed"] is True and "timed out" in result["msg"]
    assert result["log_lines"] == ["still loading"]


@pytest.mark.parametrize("required,missing", [
    (["vllm:num_requests_running"], []),
    (["vllm:time_to_first_token_seconds"], []),     # histogram through _bucket
    (["vllm:generation_tokens"], []),               # counter through _total
    (["vllm:num_requests_swapped", "vllm:num_requests_waiting"], ["vllm:num_requests_swapped"]),
    (["vllm:num_requests"], ["vllm:num_requests"]),  # a prefix is not a series
])
def test_metric_matching(required, missing):
    names = model_server_wait.metric_names(METRICS)
    assert "vllm:kv_cache_usage_perc" in names
    assert model_server_wait.missing_metrics(names, required) == missing
