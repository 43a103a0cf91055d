"""Parallel vs sequential provisioning of a plan's RunPod pods, against the local fake.

Runs tests/integration/runpod/parallel.yml (async + async_status) and the same playbook
without async, several times, and prints medians of: wall time, slowest single wait and sum
of waits (from the fake's created/ready events).

    python3 benchmarks/runpod_parallel.py [--runs 3] [--scale 1.0]

``--scale`` multiplies the fake's loading delays (3 s, 5 s, 7 s at 1.0); real cold starts are
minutes, where Ansible's fixed per-task overhead matters even less.
"""

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests"))  # first: ``import conftest`` is tests/conftest.py

# conftest makes ansible_collections.llmops.codestack importable for the playbook runs.
import conftest  # noqa: E402,F401  pylint: disable=unused-import,wrong-import-position
import test_runpod_parallel as scenario  # noqa: E402  pylint: disable=wrong-import-position
from _runpod_helpers import FAST, API_KEY, RunPodFake  # noqa: E402  pylint: disable=wrong-import-position


def one(parallel, scale):
    waits = dict((k, v * scale) for k, v in scenario.WAITS.items())
    scenario.WAITS.clear()
    scenario.WAITS.update(waits)
    with RunPodFake(api_key=API_KEY, **FAST) as fake, tempfile.TemporaryDirectory() as tmp:
        orig = scenario.run_playbook

        def run(fake_, playbook, tmp_path, extra_vars=None, **kw):
            return orig(fake_, playbook, tmp_path, dict(extra_vars or {}, parallel=parallel), **kw)

        scenario.run_playbook = run
        try:
            wall, slowest, total, _created, _ready = scenario.run_parallel(fake, Path(tmp))
        finally:
            scenario.run_playbook = orig
    scenario.WAITS.update(dict((k, v / scale) for k, v in waits.items()))
    return wall, slowest, total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args()
    from _benchlib import Recorder  # pylint: disable=import-outside-toplevel
    recorder = Recorder("runpod_parallel", args)
    print("cpus=%s load=%s" % (os.cpu_count(), os.getloadavg()))
    results = {}
    for parallel in (True, False):
        rows = [one(parallel, args.scale) for _run in range(args.runs)]
        walls = [r[0] for r in rows]
        results["parallel" if parallel else "sequential"] = {
            "wall_s": [round(w, 2) for w in walls], "wall_median_s": round(statistics.median(walls), 2),
            "slowest_wait_median_s": round(statistics.median(r[1] for r in rows), 2),
            "sum_of_waits_median_s": round(statistics.median(r[2] for r in rows), 2)}
        print("%-10s runs=%d wall median %.2fs (min %.2f max %.2f); slowest wait %.2fs; sum of waits %.2fs"
              % ("parallel" if parallel else "sequential", len(rows), statistics.median(walls),
                 min(walls), max(walls), statistics.median(r[1] for r in rows),
                 statistics.median(r[2] for r in rows)))
    print("written: " + recorder.write(results))


if __name__ == "__main__":
    main()
