"""The waker's state machine with a fake clock and fake provider work: idle clock, one wake for
concurrent first requests, policies, refused resume -> replacement, wake timeout."""

import asyncio
import importlib.util
import os
import types

import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "waker", "files", "codestack_waker.py")
spec = importlib.util.spec_from_file_location("codestack_waker", SCRIPT)
waker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(waker)


class FakeClock(waker.Clock):
    """Provider time advanced by the test (and by the waker's own sleeps)."""

    def __init__(self):
        super().__init__(1000.0)
        self.t = 0.0

    def now(self):
        return self.t

    async def sleep(self, seconds):
        self.t += max(seconds, 0.0)
        await asyncio.sleep(0)


class Refused(Exception):
    capacity = True


class FakeOps:
    def __init__(self, clock, resume_s=30.0, refuse=False, ready_after=0):
        self.clock = clock
        self.calls = []
        self.resume_s = resume_s
        self.refuse = refuse
        self.ready_after = ready_after
        self.polls = 0

    async def stop(self, dep):
        self.calls.append(("stop", dep.name))

    async def resume(self, dep):
        self.calls.append(("resume", dep.name))
        await asyncio.sleep(0.01)  # the provider call takes a while: other requests arrive
        if self.refuse:
            raise Refused("There are not enough free GPUs on the host machine to start this pod.")
        self.clock.t += self.resume_s

    async def replace(self, dep):
        self.calls.append(("replace", dep.name))
        dep.conf["resource_id"] = "fresh"

    async def ready(self, dep):
        self.polls += 1
        return self.polls > self.ready_after


def _dep(clock, ops, **conf):
    base = {"idle_timeout_s": 300, "wake_policy": "wait", "wake_timeout_s": 600, "poll_interval_s": 5,
            "resource_id": "pod1", "provider": "runpod"}
    base.update(conf)
    return waker.Deployment("big", base, clock, ops)


def run(coro):
    return asyncio.run(coro)


def test_idle_clock_stops_only_after_the_timeout_without_requests():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock)
        dep = _dep(clock, ops)
        clock.t = 299
        assert dep.tick() is None
        dep.begin()                    # a long request: never stopped while it runs
        clock.t = 1000
        assert dep.tick() is None
        dep.end()
        clock.t = 1299
        assert dep.tick() is None
        clock.t = 1300
        await dep.tick()
        assert dep.state == waker.STOPPED and ops.calls == [("stop", "big")]
        assert [e["event"] for e in dep.events] == ["stopped"]
        assert "idle for 300s" in dep.events[0]["reason"]
    run(scenario())


def test_concurrent_first_requests_share_one_wake():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock, ready_after=2)
        dep = _dep(clock, ops)
        dep.state = waker.STOPPED
        await asyncio.gather(*(dep.wait_awake("request") for _request in range(8)))
        assert [c for c in ops.calls if c[0] == "resume"] == [("resume", "big")]
        assert dep.state == waker.RUNNING and dep.wakes == 1
        woken = [e for e in dep.events if e["event"] == "woken"]
        assert len(woken) == 1 and woken[0]["duration_s"] == pytest.approx(30 + 2 * 5)
    run(scenario())


def test_a_request_during_the_stop_waits_for_it_then_wakes():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock)
        dep = _dep(clock, ops)
        clock.t = 400
        stopping = dep.tick()
        assert dep.state == waker.STOPPING
        await dep.wait_awake("request")
        assert stopping.done()
        assert [c[0] for c in ops.calls] == ["stop", "resume"]
        assert dep.state == waker.RUNNING
    run(scenario())


def test_refused_resume_is_replaced_and_logged():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock, refuse=True)
        dep = _dep(clock, ops)
        dep.state = waker.STOPPED
        await dep.wait_awake("request")
        assert [c[0] for c in ops.calls] == ["resume", "replace"]
        assert dep.conf["resource_id"] == "fresh"
        assert [e["event"] for e in dep.events] == ["resume_refused", "woken"]
        assert "(replaced)" in dep.events[-1]["reason"]
    run(scenario())


def test_a_wake_that_never_answers_fails_within_wake_timeout_and_can_be_retried():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock, ready_after=10 ** 6)
        dep = _dep(clock, ops, wake_timeout_s=120)
        dep.state = waker.STOPPED
        with pytest.raises(waker.WakeError):
            await dep.wait_awake("request")
        assert dep.state == waker.STOPPED
        assert dep.events[-1]["event"] == "wake_failed"
        assert clock.t <= 120 + 5 + 30
        ops.ready_after = 0
        ops.polls = 0
        await dep.wait_awake("request")       # the next request tries again
        assert dep.state == waker.RUNNING
    run(scenario())


def test_policy_defaults_and_wake_timeout_from_the_cold_start():
    from ansible_collections.llmops.codestack.plugins.module_utils import _stack
    policy = _stack.scaling_policy({"name": "a", "provider": "runpod", "cold_start_s": 236})
    assert policy == {"mode": "idle_stop", "idle_timeout_s": 300, "expected_wakes": 0, "wake_policy": "wait",
                      "wake_timeout_s": 354}
    assert _stack.scaling_policy({"provider": "local"})["mode"] == "always_on"
    assert _stack.scaling_policy({"provider": "runpod_serverless"})["mode"] == "serverless"
    given = _stack.scaling_policy({"provider": "vast", "cold_start_s": 60,
                                   "scaling": {"mode": "idle_stop", "idle_timeout_s": 120, "wake_policy": "fallback",
                                               "wake_timeout_s": 200, "expected_wakes": 9}})
    assert given == {"mode": "idle_stop", "idle_timeout_s": 120, "expected_wakes": 9, "wake_policy": "fallback",
                     "wake_timeout_s": 200}
    with pytest.raises(_stack.StackError):
        _stack.scaling_policy({"provider": "vast", "scaling": {"wake_policy": "pray"}})


def test_waker_deployments_and_routes_follow_the_state_file():
    from ansible_collections.llmops.codestack.plugins.module_utils import _stack
    plan = {"deployments": [
        {"name": "big", "provider": "runpod", "offer_id": "runpod:H100:on_demand", "cold_start_s": 100,
         "gpu": {"name": "H100", "provider_id": "NVIDIA H100 80GB HBM3", "count": 1},
         "model": {"key": "qwen", "quantization": "fp16"}, "price_per_hour_usd": 3.5,
         "alternatives": [
             {"provider": "runpod", "offer_id": "runpod:A100:on_demand", "gpu": {"name": "A100", "provider_id": "A100", "count": 1},
              "model": {"key": "qwen", "quantization": "fp16"}, "price_per_hour_usd": 2.1},
             {"provider": "runpod", "offer_id": "runpod:4090:on_demand", "gpu": {"name": "4090", "provider_id": "4090", "count": 1},
              "model": {"key": "qwen", "quantization": "awq"}},
             {"provider": "vast", "offer_id": "vast:H100", "gpu": {"name": "H100", "count": 1},
              "model": {"key": "qwen", "quantization": "fp16"}}]},
        {"name": "local", "provider": "local"}]}
    state = {"resources": [
        {"provider": "runpod", "kind": "pod", "id": "p1", "name": "big",
         "attributes": {"deployment": "big", "endpoint_url": "https://p1-8000.proxy/v1", "model": "qwen",
                        "offer_id": "runpod:H100:on_demand"}},
        {"provider": "local", "kind": "service", "id": "llamacpp", "attributes": {"api_base": "http://l/v1"}}]}
    deps = _stack.waker_deployments(plan, state)
    assert list(deps) == ["big"]
    assert [r["offer_id"] for r in deps["big"]["replacements"]] == ["runpod:H100:on_demand", "runpod:A100:on_demand"]
    assert deps["big"]["wake_timeout_s"] == 160 and deps["big"]["resource_id"] == "p1"
    assert _stack.stack_endpoints(plan, state)["big"]["api_base"] == "https://p1-8000.proxy/v1"
    state["resources"].append({"provider": "local", "kind": "service", "id": "waker",
                               "attributes": {"url": "http://127.0.0.1:4100", "deployments": ["big"]}})
    assert _stack.stack_endpoints(plan, state)["big"]["api_base"] == "http://127.0.0.1:4100/d/big/v1"
    # wake_policy wait: the gateway's retries stand; fallback: the waker's 503 while waking goes
    # to the fallback at once (litellm_config puts num_retries 0 on that route)
    assert "num_retries" not in _stack.stack_endpoints(plan, state)["big"]
    plan["deployments"][0]["scaling"] = {"mode": "idle_stop", "wake_policy": "fallback"}
    routed = _stack.stack_endpoints(plan, state)["big"]
    assert routed["num_retries"] == 0
    from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config
    one = {"stack_id": "s", "roles": {"coder": {"alias": "coder", "deployment": "big"}},
           "deployments": [dict(plan["deployments"][0], alternatives=[])]}
    route = next(m for m in litellm_config(one, {"big": routed})["model_list"] if m["model_name"] == "coder")
    assert route["litellm_params"]["num_retries"] == 0
    rows = dict((r["deployment"], r["mode"]) for r in _stack.scaling_report(plan, state))
    assert rows == {"big": "idle_stop", "local": "always_on"}


def test_a_stopped_machine_started_elsewhere_gets_its_idle_clock_back():
    async def scenario():
        clock = FakeClock()
        ops = FakeOps(clock)
        dep = _dep(clock, ops)
        dep.state = waker.STOPPED
        dep.next_probe = 0.0
        assert dep.probe_due() and not dep.probe_due()    # once per idle_timeout_s
        await dep.probe()
        assert dep.state == waker.RUNNING and dep.events[-1]["event"] == "found_running"
        clock.t += 300
        await dep.tick()
        assert dep.state == waker.STOPPED and ops.calls == [("stop", "big")]
    run(scenario())


class SlowOps(FakeOps):
    """Resume takes ``wall_s`` real seconds (the app runs on the real clock here)."""

    def __init__(self, clock, wall_s):
        super().__init__(clock)
        self.wall_s = wall_s

    async def resume(self, dep):
        self.calls.append(("resume", dep.name))
        await asyncio.sleep(self.wall_s)

    def ssl_for(self, dep):
        return None


def _relay_app(upstream_url, policy, ops_holder, wall_s=0.4):
    conf = {"keepalive_s": 0.05, "state_file": "", "deployments": {"d": {
        "provider": "runpod", "resource_id": "pod1", "upstream": upstream_url + "/v1", "idle_timeout_s": 10 ** 6,
        "wake_policy": policy, "wake_timeout_s": 30, "poll_interval_s": 0.01}}}

    def factory(conf_, creds, session):
        ops_holder.append(SlowOps(clock, wall_s))
        return ops_holder[-1]
    clock = waker.Clock(1.0)
    app = waker.make_app(conf, {}, clock, factory)
    return app


def test_a_stream_waiting_for_a_wake_is_kept_alive_then_relayed_and_fallback_answers_503_at_once():
    """Through the waker's own aiohttp app: a streaming request to a stopped 'wait' deployment
    gets its SSE head at once and ': waking the GPU' comments while the resume runs, then the
    model's stream; a 'fallback' deployment answers 503 at once and wakes in the background."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    async def chat(request):
        answer = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await answer.prepare(request)
        await answer.write(b'data: {"choices": [{"delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n')
        await answer.write_eof()
        return answer

    async def scenario(policy):
        model = web.Application()
        model.router.add_post("/v1/chat/completions", chat)
        upstream = TestServer(model)
        await upstream.start_server()
        ops = []
        app = _relay_app(str(upstream.make_url("")).rstrip("/"), policy, ops)
        async with TestClient(TestServer(app)) as client:
            app["waker"].deployments["d"].state = waker.STOPPED
            started = asyncio.get_running_loop().time()
            resp = await client.post("/d/d/v1/chat/completions", json={"model": "m", "stream": True})
            head_s = asyncio.get_running_loop().time() - started
            body = (await resp.read()).decode()
            dep = app["waker"].deployments["d"]
            if policy == "fallback":
                for _wait in range(100):   # the background wake finishes
                    if dep.state == waker.RUNNING:
                        break
                    await asyncio.sleep(0.02)
            out = (resp.status, resp.headers.get("Content-Type"), head_s, body, dep.state, dep.wakes,
                   [c for c in ops[0].calls if c[0] == "resume"])
        await upstream.close()
        return out

    status, ctype, head_s, body, state, wakes, resumes = run(scenario("wait"))
    assert status == 200 and ctype.startswith("text/event-stream")
    assert head_s < 0.35   # the head came before the 0.4 s resume was over
    assert body.count(": waking the GPU") >= 3   # every 0.05 s while waking
    assert body.index(": waking the GPU") < body.index('"hi"') < body.index("data: [DONE]")
    assert (state, wakes, resumes) == (waker.RUNNING, 1, [("resume", "d")])

    status, _ctype, head_s, body, state, wakes, resumes = run(scenario("fallback"))
    assert status == 503 and "waking" in body and head_s < 0.35
    assert (state, wakes, resumes) == (waker.RUNNING, 1, [("resume", "d")])


def _self_signed_pem():
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "codestack test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_the_model_servers_authority_travels_in_the_config_for_a_waker_on_another_host(tmp_path):
    """A Vast.ai server with its own TLS: the controller reads its CA into the waker's settings
    (ca_pem), so a waker on a control host without the controller's file still trusts it."""
    from ansible_collections.llmops.codestack.plugins.module_utils import _stack
    pem = _self_signed_pem()
    (tmp_path / "ca.pem").write_text(pem)
    plan = {"deployments": [{"name": "small", "provider": "vast", "offer_id": "vast:4090",
                             "gpu": {"name": "RTX 4090", "count": 1}, "model": {"key": "qwen"}}]}
    state = {"resources": [{"provider": "vast", "kind": "instance", "id": "7", "name": "small",
                            "attributes": {"deployment": "small", "endpoint_url": "https://203.0.113.7:8000/v1",
                                           "offer_id": "vast:4090", "tls_ca_file": str(tmp_path / "ca.pem")}}]}
    conf = _stack.waker_deployments(plan, state)["small"]
    assert conf["ca_pem"] == pem and conf["ca_file"] == str(tmp_path / "ca.pem")
    (tmp_path / "ca.pem").unlink()   # as on the other host: the file is not there
    ops = waker.ProviderOps({}, {}, None, {})
    dep = types.SimpleNamespace(conf=conf)
    context = ops.ssl_for(dep)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "codestack test CA"),),)]
    assert ops.ssl_for(dep) is context   # one context per authority
    # without the file on the controller either: the waker opens ca_file itself (as before)
    assert _stack.waker_deployments(plan, state)["small"]["ca_pem"] == ""
