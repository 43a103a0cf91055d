# -*- coding: utf-8 -*-
"""What the waker costs: the time it adds over the provider's own resume, and its hop on a warm route.

1. Wake: the RunPod fake at zero delay (created, running and resume delays 0) relays a pod's port
   to a fast OpenAI-compatible backend. Per round, interleaved:
   - ``provider``: ``podStop``, then what a client doing it itself would do: ``podResume``, poll
     ``/v1/models`` through the pod's proxy until it answers, then one chat completion;
   - ``waker``: the waker stops the pod after its idle timeout; then one chat completion through
     the waker, which resumes the pod, polls and relays.
   The difference of the medians is the time the waker adds (its poll interval, the state-file
   writes, its own hop).
2. Warm route: the real LiteLLM proxy with two groups on the same fast backend, one direct, one
   through the waker (pod running), plus the waker alone without the gateway; interleaved
   sequential chat completions, median of per-round differences (goal: within 1 ms).
3. Fallback while waking (``--only fallback`` runs this one alone): a pod the waker keeps
   waking (``wake_policy: fallback``; the fake's resume never ends), routed by the gateway
   config the collection renders (``stack_endpoints`` + ``litellm_config``), its fallback the
   fast backend. Two real LiteLLM proxies, interleaved: ``before`` with the gateway's retries on
   the waker's route (num_retries 2, what the config had), ``after`` as rendered now (num_retries
   0 on a fallback-while-waking route): the first request's wall time until the fallback's answer.

Writes benchmarks/results/waker-<date>.json (benchlib: machine, versions, load average).
Run: python benchmarks/waker_bench.py [--wake-rounds 15] [--rounds 200] [--fallback-rounds 10]
     [--only wake|warm|fallback]
"""

import argparse
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "fakes"))

# tests/conftest.py makes the checkout importable as ansible_collections.llmops.codestack (by
# path: tests/integration has a conftest.py of its own).
_spec = importlib.util.spec_from_file_location("codestack_tests_conftest", os.path.join(REPO, "tests", "conftest.py"))
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))
from _benchlib import Client, Recorder, interleaved, paired_delta, summary  # noqa: E402  pylint: disable=wrong-import-position
from _services import free_port, start_litellm, start_process, stop_process, wait_http  # noqa: E402  pylint: disable=wrong-import-position
from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.llmops.codestack.plugins.module_utils._runpod import RunPodClient  # noqa: E402  pylint: disable=wrong-import-position

KEY = "bench-key"
VLLM_KEY = "bench-vllm-key"
MASTER = "sk-bench-master-key"
WAKER = os.path.join(REPO, "roles", "waker", "files", "codestack_waker.py")


def start_backend(work):
    port_file = os.path.join(work, "fast.port")
    proc = start_process([sys.executable, os.path.join(REPO, "tests", "fakes", "openai_backend_fake.py"),
                          "--name", "fast", "--port", "0", "--port-file", port_file], os.path.join(work, "fast.log"))
    deadline = time.monotonic() + 30
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("the fast backend did not start")
        time.sleep(0.05)
    return proc, "http://127.0.0.1:%s" % open(port_file).read().strip()


def deploy(client, name):
    spec = {"name": "bench--" + name, "imageName": "vllm/vllm-openai:v0.11.0", "gpuTypeId": "NVIDIA GeForce RTX 4090",
            "gpuCount": 1, "cloudType": "ALL", "containerDiskInGb": 20, "volumeInGb": 0, "ports": "8000/http",
            "dockerArgs": "--model m --served-model-name fast", "env": [{"key": "VLLM_API_KEY", "value": VLLM_KEY}]}
    return client.deploy_pod(spec)["id"]


def start_waker(work, fake, pod_id, idle_s, poll_s, uvloop=True, policy="wait"):
    """The waker as the role runs it: its script, config.json, credentials.json (0600)."""
    lib = os.path.join(work, "waker-lib", "ansible_collections", "llmops", "codestack", "plugins", "module_utils")
    os.makedirs(lib, exist_ok=True)
    for name in ("_http.py", "_runpod.py", "_vast.py", "_statefile.py"):
        with open(os.path.join(REPO, "plugins", "module_utils", name)) as src, open(os.path.join(lib, name), "w") as dst:
            dst.write(src.read())
    port = free_port()
    upstream = fake.proxy_template.format(pod_id=pod_id, port=8000) + "/v1"
    conf = {"listen": {"host": "127.0.0.1", "port": port}, "stack_id": "bench", "state_file": "",
            "poll_interval_s": poll_s, "keepalive_s": 5,
            "deployments": {"d": {"provider": "runpod", "kind": "pod", "resource_id": pod_id, "upstream": upstream,
                                  "idle_timeout_s": idle_s, "wake_policy": policy, "wake_timeout_s": 120,
                                  "gpu_count": 1, "bid_per_gpu": None, "replacements": []}}}
    creds = {"runpod": {"api_key": KEY, "api_endpoint": fake.url, "proxy_url_template": fake.proxy_template},
             "vast": {}, "vllm_api_key": VLLM_KEY}
    with open(os.path.join(work, "waker.json"), "w") as handle:
        json.dump(conf, handle)
    path = os.path.join(work, "creds.json")
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(creds, handle)
    proc = start_process([sys.executable, WAKER, "--config", os.path.join(work, "waker.json"), "--credentials", path],
                         os.path.join(work, "waker.log"),
                         env=dict({"PYTHONPATH": os.path.join(work, "waker-lib")},
                                  **({} if uvloop else {"CODESTACK_WAKER_NO_UVLOOP": "1"})))
    url = "http://127.0.0.1:%d" % port
    wait_http(url + "/_status", timeout=60, proc=proc, log_path=proc.log_path)
    return proc, url


def status(url):
    with urllib.request.urlopen(url + "/_status", timeout=10) as answer:
        return json.load(answer)["deployments"]["d"]


def wake_rounds(fake, pod_id, waker_url, rounds, idle_s):
    client = RunPodClient(KEY, fake.url, retries=0)
    proxy = fake.proxy_template.format(pod_id=pod_id, port=8000) + "/v1"
    direct = Client(proxy, "fast", VLLM_KEY)
    through = Client(waker_url + "/d/d/v1", "fast", VLLM_KEY)

    def provider():
        start = time.perf_counter()
        client.resume_pod(pod_id, 1)
        while True:
            try:
                with urllib.request.urlopen(urllib.request.Request(
                        proxy + "/models", headers={"Authorization": "Bearer " + VLLM_KEY}), timeout=5) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                time.sleep(0.005)
        direct.chat(max_tokens=4)
        elapsed = (time.perf_counter() - start) * 1000.0
        client.stop_pod(pod_id)
        return elapsed

    def until_stopped():
        deadline = time.monotonic() + 30
        while status(waker_url)["state"] != "stopped":
            if time.monotonic() > deadline:
                raise SystemExit("the waker did not stop the pod")
            time.sleep(idle_s / 4)

    def waker():
        until_stopped()
        start = time.perf_counter()
        through.chat(max_tokens=4)
        return (time.perf_counter() - start) * 1000.0

    # Alternately: the waker wakes the pod and stops it again after its idle timeout; then the
    # pod (stopped, and stopped in the waker's view) is resumed by hand and stopped again.
    values = {"provider": [], "waker": []}
    for _round in range(rounds):
        values["waker"].append(waker())
        until_stopped()
        values["provider"].append(provider())
    direct.close()
    through.close()
    return values


def fallback_rounds(work, fake, client, base, rounds, poll_s, uvloop):
    """First requests to a waking pod (wake_policy fallback) through the gateway config the
    collection renders, with and without the gateway's retries on the waker's route."""
    from ansible_collections.llmops.codestack.plugins.filter.litellm_config import litellm_config  # pylint: disable=import-outside-toplevel
    from ansible_collections.llmops.codestack.plugins.module_utils import _stack  # pylint: disable=import-outside-toplevel

    pod = deploy(client, "sleepy")
    client.stop_pod(pod)
    fake.configure(resume_delay=10 ** 7)   # the resume never ends: every request finds it waking
    waker, waker_url = start_waker(work, fake, pod, 10 ** 6, poll_s, uvloop, policy="fallback")
    plan = {"stack_id": "bench", "roles": {"coder": {"alias": "coder", "deployment": "big"},
                                           "reviewer": {"alias": "reviewer", "deployment": "small"}},
            "deployments": [
                {"name": "big", "provider": "runpod", "engine": "vllm", "price_per_hour_usd": 3.5, "roles": ["coder"],
                 "scaling": {"mode": "idle_stop", "wake_policy": "fallback"}},
                {"name": "small", "provider": "local", "engine": "llamacpp", "roles": ["reviewer"]}]}
    state = {"resources": [
        {"provider": "runpod", "kind": "pod", "id": pod, "name": "big",
         "attributes": {"deployment": "big", "endpoint_url": "http://unused/v1", "model": "fast"}},
        {"provider": "local", "kind": "service", "id": "llamacpp",
         "attributes": {"api_base": base + "/v1", "model": "fast"}},
        {"provider": "local", "kind": "service", "id": "waker",
         "attributes": {"url": waker_url, "deployments": ["big"]}}]}
    after = _stack.stack_endpoints(plan, state, vllm_api_key=VLLM_KEY)
    before = dict(after, big=dict((k, v) for k, v in after["big"].items() if k != "num_retries"))
    api_base = after["big"]["api_base"]
    after["big"]["api_base"] = before["big"]["api_base"] = api_base.replace("/d/big/", "/d/d/")
    gateways, procs = {}, [waker]
    try:
        for name, endpoints in (("before", before), ("after", after)):
            path = os.path.join(work, "litellm-%s.yaml" % name)
            with open(path, "w") as handle:
                json.dump(litellm_config(plan, endpoints), handle)
            gateway = start_litellm(path, env={"LITELLM_MASTER_KEY": MASTER}, log_path=os.path.join(work, "litellm-%s.log" % name))
            procs.append(gateway)
            gateways[name] = gateway.url.rstrip("/")
        fallbacks = {}
        for name, url in gateways.items():
            request = urllib.request.Request(url + "/v1/chat/completions", data=json.dumps(
                {"model": "coder", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}).encode(),
                headers={"Authorization": "Bearer " + MASTER, "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=60) as answer:
                fallbacks[name] = int(answer.headers.get("x-litellm-attempted-fallbacks") or 0)
        targets = dict((name, Client(url + "/v1", "coder", MASTER)) for name, url in gateways.items())
        series = interleaved(targets, rounds, lambda c: c.chat(max_tokens=4)[0], warmup=1)
        for client_ in targets.values():
            client_.close()
        with open(os.path.join(work, "litellm-before.yaml")) as handle:
            retries = json.load(handle)["router_settings"]["num_retries"]
        return {"first_request_ms": dict((name, summary(values)) for name, values in series.items()),
                "saved_ms": paired_delta(series["before"], series["after"]),
                "attempted_fallbacks": fallbacks, "router_num_retries": retries, "rounds": rounds,
                "note": "a waking pod behind the waker (wake_policy fallback): before = the gateway's retries "
                        "on its route, after = num_retries 0 on it (stack_endpoints)"}
    finally:
        for proc in procs:
            proc.stop() if hasattr(proc, "stop") else stop_process(proc)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wake-rounds", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--poll-interval", type=float, default=0.02, help="waker_poll_interval_s (seconds)")
    parser.add_argument("--fallback-rounds", type=int, default=10)
    parser.add_argument("--only", choices=("wake", "warm", "fallback"), help="run one part alone")
    parser.add_argument("--json", help="write the results here instead of benchmarks/results/")
    parser.add_argument("--no-uvloop", action="store_true",
                        help="run the waker on asyncio's own event loop (it uses uvloop where installed)")
    args = parser.parse_args()
    recorder = Recorder("waker", args)
    work = tempfile.mkdtemp(prefix="waker-bench-")
    procs = []
    results = {}
    fake = RunPodFake(api_key=KEY, created_delay=0, running_delay=0, resume_delay=0)
    try:
        backend, base = start_backend(work)
        procs.append(backend)
        fake.configure(upstream=base)
        fake.start()
        client = RunPodClient(KEY, fake.url, retries=0)

        # 1. the wake
        if args.only in (None, "wake"):
            idle_s = 0.3
            wake_pod = deploy(client, "wake")
            waker, waker_url = start_waker(work, fake, wake_pod, idle_s, args.poll_interval, not args.no_uvloop)
            procs.append(waker)
            values = wake_rounds(fake, wake_pod, waker_url, args.wake_rounds, idle_s)
            stop_process(waker)
            procs.remove(waker)
            results["wake"] = {
                "provider_resume_ms": summary(values["provider"]), "through_waker_ms": summary(values["waker"]),
                "added_ms_p50": round(statistics.median(values["waker"]) - statistics.median(values["provider"]), 1),
                "poll_interval_s": args.poll_interval,
                "note": "provider: podResume + poll /v1/models every 5 ms + one chat; waker: one chat after its idle stop"}

        # 2. the warm route
        if args.only in (None, "warm"):
            warm_pod = deploy(client, "warm")
            work2 = os.path.join(work, "warm")
            os.makedirs(work2)
            waker, waker_url = start_waker(work2, fake, warm_pod, 10 ** 6, args.poll_interval, not args.no_uvloop)
            procs.append(waker)
            proxy = fake.proxy_template.format(pod_id=warm_pod, port=8000) + "/v1"
            config = {"model_list": [
                {"model_name": "direct", "litellm_params": {"model": "openai/fast", "api_base": proxy, "api_key": VLLM_KEY}},
                {"model_name": "waker", "litellm_params": {"model": "openai/fast", "api_base": waker_url + "/d/d/v1",
                                                           "api_key": VLLM_KEY}}],
                "general_settings": {"master_key": MASTER}, "litellm_settings": {"drop_params": True}}
            path = os.path.join(work, "litellm.yaml")
            with open(path, "w") as handle:
                json.dump(config, handle)
            gateway = start_litellm(path, log_path=os.path.join(work, "litellm.log"))
            procs.append(gateway)
            gw = gateway.url.rstrip("/")
            targets = {"gateway_direct": Client(gw + "/v1", "direct", MASTER),
                       "gateway_waker": Client(gw + "/v1", "waker", MASTER),
                       "backend_via_pod_proxy": Client(proxy, "fast", VLLM_KEY),
                       "waker_alone": Client(waker_url + "/d/d/v1", "fast", VLLM_KEY)}
            series = interleaved(targets, args.rounds, lambda c: c.chat(max_tokens=4)[0], warmup=5)
            with open(os.path.join(work2, "waker.log")) as handle:
                started = [json.loads(line.split(" ", 2)[2]) for line in handle if '"event": "started"' in line]
            results["waker_event_loop"] = started[0].get("event_loop") if started else None
            results["warm_route"] = {
                "ms": dict((name, summary(values)) for name, values in series.items()),
                "gateway_overhead_of_waker_ms": paired_delta(series["gateway_waker"], series["gateway_direct"]),
                "waker_hop_ms": paired_delta(series["waker_alone"], series["backend_via_pod_proxy"]),
                "rounds": args.rounds}
            for client_ in targets.values():
                client_.close()

        # 3. the first request while a pod wakes (wake_policy fallback)
        if args.only in (None, "fallback"):
            results["fallback_while_waking"] = fallback_rounds(work, fake, client, base, args.fallback_rounds,
                                                               args.poll_interval, not args.no_uvloop)
    finally:
        for proc in procs:
            try:
                proc.stop() if hasattr(proc, "stop") else stop_process(proc)
            except Exception:  # pylint: disable=broad-except
                pass
        fake.stop()
    path = recorder.write(results, args.json)
    print(json.dumps(results, indent=2))
    print("written:", path)


if __name__ == "__main__":
    main()
