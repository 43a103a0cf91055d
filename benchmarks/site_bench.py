"""site.yml's wall time of a full build and of the no-change re-run, and where the time goes.

Two stacks (``--stack``):

- ``embedded`` (the issue's figure): the embedded default exactly as ``scripts/quickstart.sh``
  builds it, nothing paid: llama.cpp with SmolLM2 on this machine, the LiteLLM gateway,
  code-server with KiloCode; private ports, directories and IDE user, as the slow tier's
  tests/integration/test_site_embedded.py uses them;
- ``cloud``: rented GPUs at zero-latency fakes (below), so that the provisioning and serving
  roles' tasks are counted too.

The RunPod and Vast.ai fakes answer at once and their machines are "running" the moment they
are created; the model behind them is tests/fakes/openai_backend_fake.py (answers instantly).
So what remains is Ansible and our own code: the real LiteLLM gateway still starts (a build
waits for it), calibration still sends its requests (first build only).

Each run uses the ``ansible.builtin.json`` callback's per-task start/end times to split the
wall time into:

- ``our modules``: tasks whose action is ``llmops.codestack.*`` (provisioning, waits, state
  file, calibration), as Ansible measures them (module transfer and fork included);
- ``builtin modules``: other modules that run on the host (``copy``, ``uri``, ``command``,
  ``pip``, ``slurp``, ...);
- ``controller-only tasks``: ``set_fact``, ``assert``, ``debug``, includes, handlers' ``meta``:
  Ansible evaluating templates and conditions;
- ``outside tasks``: the rest of the wall time (interpreter start, parsing, role and include
  loading, play set-up, fact gathering's own overhead is inside its task).

A third figure is the floor Ansible itself sets: a bare ``ansible-playbook`` running as many
no-op tasks (``ansible.builtin.debug``, one play, no facts) as the re-run executed, which is
what the re-run would cost if every one of its tasks did nothing.

    python3 benchmarks/site_bench.py [--stack embedded|cloud] [--runs 3]

It makes the checkout importable as ``llmops.codestack`` itself (a link tree under the
temporary directory, as benchmarks/plan_bench.py does) unless ANSIBLE_COLLECTIONS_PATH is set.

Prints the medians of each figure for the first build and the re-run, in one run of the
script (the machine is shared and noisy: compare ratios, not absolute seconds).
"""

import argparse
import hashlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "fakes"))
sys.path.insert(0, str(REPO / "tests"))  # first: ``import conftest`` is tests/conftest.py


def _collections_path():
    """ANSIBLE_COLLECTIONS_PATH for this checkout: a link tree ansible_collections/llmops/codestack
    (one per checkout: a shared one would run another checkout's code)."""
    if os.environ.get("ANSIBLE_COLLECTIONS_PATH"):
        return
    parts = str(REPO).split(os.sep)
    if parts[-3:-2] == ["ansible_collections"]:
        os.environ["ANSIBLE_COLLECTIONS_PATH"] = os.sep.join(parts[:-3]) or os.sep
        return
    root = os.path.join(tempfile.gettempdir(), "codestack-bench-colls-" + hashlib.sha1(str(REPO).encode()).hexdigest()[:10])
    link = os.path.join(root, "ansible_collections", "llmops", "codestack")
    if not os.path.islink(link) or os.path.realpath(link) != os.path.realpath(str(REPO)):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if os.path.islink(link):
            os.remove(link)
        os.symlink(str(REPO), link)
    os.environ["ANSIBLE_COLLECTIONS_PATH"] = root


_collections_path()

import conftest  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
from _cloudstack import CloudStack, plan_blueprint, split_plan  # noqa: E402  pylint: disable=wrong-import-position
from openai_backend_fake import FakeOpenAIBackend  # noqa: E402  pylint: disable=wrong-import-position
from _services import free_port, strategy_env  # noqa: E402  pylint: disable=wrong-import-position

CONTROLLER = {"ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.debug",
              "ansible.builtin.include_tasks", "ansible.builtin.import_tasks", "ansible.builtin.include_role",
              "ansible.builtin.meta", "ansible.builtin.fail", "set_fact", "assert", "debug", "include_tasks",
              "include_role", "meta", "fail", "ansible.builtin.validate_argument_spec", "validate_argument_spec",
              "ansible.builtin.add_host", "add_host", "ansible.builtin.include_vars", "include_vars"}
# This collection's action plugins that never send a module to the host, and those that do
# their module's work in the worker process on the local connection without become
# (plugin_utils/_inprocess.py), which is how both stacks of this benchmark reach their host.
CONTROLLER_OURS = {"llmops.codestack.warn", "llmops.codestack.intent_estimate", "llmops.codestack.spend_report",
                   "llmops.codestack.stack_context", "llmops.codestack.catalog_refresh",
                   "llmops.codestack.stack_state", "llmops.codestack.host_probe", "llmops.codestack.host_files",
                   "llmops.codestack.alias_check", "llmops.codestack.run_service", "llmops.codestack.host_facts"}


def _seconds(stamp):
    return datetime.strptime(stamp.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f").timestamp()


def split(result_json, wall):
    """Seconds per category from the json callback's output."""
    shares = {"our modules": 0.0, "builtin modules": 0.0, "controller-only tasks": 0.0}
    calls = executed = module_runs = 0
    per_task = {}
    module_run_tasks = []
    for play in result_json["plays"]:
        for task in play["tasks"]:
            duration = task["task"].get("duration") or {}
            if not duration.get("start") or not duration.get("end"):
                continue
            seconds = _seconds(duration["end"]) - _seconds(duration["start"])
            host_result = next(iter(task["hosts"].values()), {})
            action = host_result.get("action", "")
            executed += 1
            per_task[task["task"]["name"]] = per_task.get(task["task"]["name"], 0.0) + seconds
            on_host = not (action in CONTROLLER or not action or action in CONTROLLER_OURS)
            if on_host and not host_result.get("skipped"):
                module_runs += 1
                module_run_tasks.append([task["task"]["name"], action, round(seconds, 3)])
            if action.startswith("llmops.codestack."):
                shares["our modules"] += seconds
                calls += 1
            elif action in CONTROLLER or not action:
                shares["controller-only tasks"] += seconds
            else:
                shares["builtin modules"] += seconds
    shares["outside tasks"] = max(0.0, wall - sum(shares.values()))
    shares["wall"] = wall
    shares["our module tasks"] = calls
    shares["task runs"] = executed
    # Tasks that ran a module on the host (not skipped, not a controller-only action): the
    # count that does not depend on how busy the machine is.
    shares["module runs"] = module_runs
    shares["module run tasks"] = module_run_tasks
    shares["tasks"] = per_task
    return shares


def _play(playbook, extra_vars, json_output=True, strategy="linear"):
    """Run one of the collection's playbooks on this machine; returns (proc, wall seconds)."""
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", **strategy_env(strategy))
    if json_output:
        env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", str(REPO / "playbooks" / playbook), "-e", json.dumps(extra_vars)],
                          env=env, capture_output=True, text=True, timeout=3000, check=False)
    return proc, time.monotonic() - started


def one_embedded(tmp, strategies, reruns):
    """Build, re-run and tear down the embedded default (the slow tier's settings). The no-change
    re-run is repeated ``reruns`` times per strategy, the strategies interleaved round by round."""
    extra = {
        "codestack_output": str(tmp / "stack"),
        "llamacpp_server_port": free_port(), "llamacpp_server_dir": str(tmp / "llama"),
        "llamacpp_server_name": "llama-bench",
        "litellm_gateway_port": free_port(), "litellm_gateway_dir": str(tmp / "litellm"),
        "code_server_kilocode_port": free_port(), "code_server_kilocode_user": "codestack-bench",
        "code_server_kilocode_service_name": "code-server-bench",
        "blueprint": str(REPO / "blueprints" / "small-cli.yml"),
    }
    out = {"re-runs": {s: [] for s in strategies}}
    try:
        runs = [("build", strategies[0])] + [("re-run", s) for _round in range(reruns) for s in strategies]
        for index, (label, strategy) in enumerate(runs):
            proc, wall = _play("site.yml", extra, strategy=strategy)
            (tmp / ("%d-%s-%s.log" % (index, label, strategy))).write_text(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                raise SystemExit("site.yml failed (%s, %s):\n%s" % (label, strategy, proc.stdout[-4000:]))
            doc = json.loads(proc.stdout)
            figures = split(doc, wall)
            figures["changed"] = doc["stats"]["localhost"]["changed"]
            figures["strategy"] = strategy
            if label == "build":
                out["build"] = figures
            else:
                out["re-runs"][strategy].append(figures)
            print("%s (%s): %.1f s, %d task runs, changed=%d" % (
                label, strategy, wall, figures["task runs"], figures["changed"]), flush=True)
    finally:
        down, wall = _play("teardown.yml", {"codestack_output": extra["codestack_output"]}, json_output=False)
        (tmp / "teardown.log").write_text(down.stdout + down.stderr)
        if down.returncode != 0:
            raise SystemExit("teardown failed:\n" + down.stdout[-4000:])
    out["teardown"] = {"wall": wall}
    # The re-run of the first strategy is the one the summary reports next to the build.
    first = out["re-runs"][strategies[0]]
    out["re-run"] = sorted(first, key=lambda r: r["wall"])[len(first) // 2]
    out["bare by strategy"] = {s: bare(tmp, out["re-run"]["task runs"], strategy=s) for s in strategies}
    out["bare"] = out["bare by strategy"][strategies[0]]
    return out


def one(tmp, plan_file, backend):
    stack = CloudStack(tmp, backend.url.rsplit("/v1", 1)[0],
                       runpod_config={"created_delay": 0.0, "running_delay": 0.0},
                       vast_config={"created_delay": 0.0, "running_delay": 0.0, "steal_offers": [3001]})
    try:
        variables = stack.site_vars(plan_file, codestack_calibrate_requests=1)
        out = {}
        for label in ("build", "re-run"):
            proc = stack.run("site.yml", variables, json_output=True)
            if proc.returncode != 0:
                raise SystemExit("site.yml failed (%s):\n%s" % (label, proc.stdout[-4000:]))
            doc = json.loads(proc.stdout)
            out[label] = split(doc, proc.wall_s)
            out[label]["changed"] = doc["stats"]["localhost"]["changed"]
        down = stack.teardown()
        if down.returncode != 0:
            raise SystemExit("teardown failed:\n" + down.stdout[-4000:])
        out["teardown"] = {"wall": down.wall_s}
        out["bare"] = bare(tmp, out["re-run"]["task runs"])
        return out
    finally:
        stack.close()


def bare(tmp, tasks, strategy="linear"):
    """Wall time of ansible-playbook running ``tasks`` no-op debug tasks (one play, no facts)."""
    playbook = tmp / "bare.yml"
    playbook.write_text(json.dumps([{"name": "No-op tasks", "hosts": "localhost", "connection": "local",
                                     "gather_facts": False,
                                     "tasks": [{"name": "No-op %d" % i, "ansible.builtin.debug": {"msg": "noop"}}
                                               for i in range(tasks)]}]))
    started = time.monotonic()
    proc = subprocess.run(["ansible-playbook", str(playbook)], capture_output=True, text=True, check=False,
                          env=dict(os.environ, ANSIBLE_NOCOLOR="1", **strategy_env(strategy)))
    wall = time.monotonic() - started
    if proc.returncode != 0:
        raise SystemExit("bare playbook failed:\n" + proc.stdout[-2000:])
    return {"wall": wall, "tasks": tasks}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", choices=("embedded", "cloud"), default="embedded",
                        help="embedded: the embedded default (the issue's figure); cloud: rented GPUs at fakes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--strategies", default="linear",
                        help="embedded: comma-separated strategies the re-run is measured with, interleaved "
                             "(linear, mitogen_linear)")
    parser.add_argument("--reruns", type=int, default=3, help="embedded: no-change re-runs per strategy")
    args = parser.parse_args()
    strategies = [s for s in args.strategies.split(",") if s]
    sys.path.insert(0, str(REPO / "benchmarks"))
    from _benchlib import Recorder  # pylint: disable=import-outside-toplevel
    recorder = Recorder("site" if args.stack == "cloud" else "site-embedded", args)
    base = pathlib.Path(tempfile.mkdtemp(prefix="site-bench-"))
    try:
        results = []
        if args.stack == "embedded":
            for index in range(args.runs):
                tmp = base / ("run%d" % index)
                tmp.mkdir()
                started = time.monotonic()
                results.append(one_embedded(tmp, strategies, args.reruns))
                print("run %d: %.1f s" % (index + 1, time.monotonic() - started), flush=True)
        else:
            plan_file = base / "plan.json"
            plan_file.write_text(json.dumps(split_plan(plan_blueprint(base))))
            with FakeOpenAIBackend("bench") as backend:
                for index in range(args.runs):
                    tmp = base / ("run%d" % index)
                    tmp.mkdir()
                    started = time.monotonic()
                    results.append(one(tmp, plan_file, backend))
                    print("run %d: %.1f s" % (index + 1, time.monotonic() - started), flush=True)
        for label in ("build", "re-run"):
            rows = [r[label] for r in results]
            wall = statistics.median(r["wall"] for r in rows)
            print("\n%s (median of %d): wall %.1f s, changed=%s" % (
                label, len(rows), wall, sorted(set(r["changed"] for r in rows))))
            for key in ("our modules", "builtin modules", "controller-only tasks", "outside tasks"):
                value = statistics.median(r[key] for r in rows)
                share = statistics.median(r[key] / r["wall"] for r in rows)
                print("  %-22s %6.1f s  %4.0f %%" % (key, value, share * 100))
            print("  %-22s %6d" % ("our module tasks", statistics.median(r["our module tasks"] for r in rows)))
            print("  %-22s %6d" % ("task runs", statistics.median(r["task runs"] for r in rows)))
            print("  %-22s %6d" % ("module runs on the host", statistics.median(r["module runs"] for r in rows)))
            names = set().union(*(r["tasks"] for r in rows))
            slowest = sorted(((statistics.median(r["tasks"].get(n, 0.0) for r in rows), n) for n in names), reverse=True)
            print("  slowest tasks: " + "; ".join("%s %.1f s" % (n, v) for v, n in slowest[:6]))
        print("\nteardown (median): %.1f s" % statistics.median(r["teardown"]["wall"] for r in results))
        print("bare ansible-playbook, %d no-op tasks (median): %.1f s" % (
            statistics.median(r["bare"]["tasks"] for r in results),
            statistics.median(r["bare"]["wall"] for r in results)))
        print("re-run / build wall: %.2f" % statistics.median(r["re-run"]["wall"] / r["build"]["wall"] for r in results))
        for result in results:
            for strategy, rows in result.get("re-runs", {}).items():
                walls = [r["wall"] for r in rows]
                print("re-run with strategy %s: median %.1f s of %s (changed %s); bare no-op floor %.1f s" % (
                    strategy, statistics.median(walls), ", ".join("%.1f" % w for w in walls),
                    sorted(set(r["changed"] for r in rows)), result["bare by strategy"][strategy]["wall"]))
        print("written: " + recorder.write({"runs": results}))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
