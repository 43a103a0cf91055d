"""Several pods of a plan provisioned in parallel: the waits overlap instead of adding up.

The figures (wall time, slowest wait, sum of waits) are printed; benchmarks/runpod_parallel.py
measures them repeatedly. The assertion is structural (the waits overlap), not a timing.
"""

import json
import re

import pytest

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration

# Seconds each pod spends loading in the fake (by deployment name).
WAITS = {"architect": 3.0, "coder": 5.0, "reviewer": 7.0}
GPUS = {"architect": "NVIDIA H100 80GB HBM3", "coder": "NVIDIA GeForce RTX 4090",
        "reviewer": "NVIDIA A100 80GB PCIe"}


def parallel_plan():
    deployments = []
    for role, gpu in GPUS.items():
        deployments.append({"name": role, "provider": "runpod", "pricing": "on_demand",
                            "gpu": {"provider_id": gpu, "count": 1},
                            "cold_start_s": WAITS[role],
                            "model": {"key": "m-" + role, "hf_repo": "org/model-" + role}})
    return {"stack_id": "codestack-parallel", "deployments": deployments}


def run_parallel(fake, tmp_path):
    """Run the playbook; returns (wall_s, slowest_wait_s, sum_of_waits_s, history)."""
    fake.configure(delay_by_name=WAITS, created_delay=0.2)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(parallel_plan()))
    proc = run_playbook(fake, "parallel.yml", tmp_path, {"plan_file": str(plan_file)})
    assert_ok(proc)
    found = re.search(r"PARALLEL_WALL_S=([0-9.]+) T0=([0-9.]+) T1=([0-9.]+)", proc.stdout)
    wall, t0, t1 = (float(x) for x in found.groups())
    history = fake.snapshot()["history"]
    created = dict((h["pod"], h["at"]) for h in history if h["event"] == "created")
    ready = dict((h["pod"], h["at"]) for h in history if h["event"] == "ready")
    served = dict((h["pod"], h["at"]) for h in history if h["event"] == "served")
    waits = [ready[pod] - created[pod] for pod in created]
    # Where the wall time goes: start -> first rental, rentals spread, last ready -> its port
    # answering a probe, last probe -> the play seeing every job done.
    timeline = {"to_first_rental": min(created.values()) - t0,
                "rental_spread": max(created.values()) - min(created.values()),
                "probe_lag": max(served[p] - ready[p] for p in ready),
                "collect": t1 - max(served.values())}
    print("timeline: " + ", ".join("%s %.2fs" % kv for kv in timeline.items()))
    return wall, max(waits), sum(waits), created, ready


def test_parallel_provisioning_overlaps(runpod_fake, tmp_path):  # noqa: F811
    wall, slowest, total, created, ready = run_parallel(runpod_fake, tmp_path)
    print("\nparallel provisioning of %d pods: wall %.2fs, slowest wait %.2fs, sum of waits %.2fs"
          " (rentals issued within %.2fs)"
          % (len(created), wall, slowest, total, max(created.values()) - min(created.values())))
    assert len(created) == len(WAITS) and set(ready) == set(created)
    # Every pod was rented before the first one became ready: the waits ran concurrently.
    assert max(created.values()) < min(ready.values())
    assert runpod_fake.snapshot()["live_pods"] == 0
