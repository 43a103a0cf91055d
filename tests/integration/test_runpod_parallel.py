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
    wall = float(re.search(r"PARALLEL_WALL_S=([0-9.]+)", proc.stdout).group(1))
    history = fake.snapshot()["history"]
    created = dict((h["pod"], h["at"]) for h in history if h["event"] == "created")
    ready = dict((h["pod"], h["at"]) for h in history if h["event"] == "ready")
    waits = [ready[pod] - created[pod] for pod in created]
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
