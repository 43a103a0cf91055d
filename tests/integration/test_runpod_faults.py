"""Fault cases of the RunPod modules, each through ansible-playbook against the fake."""

import pytest

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_supply_constraint_gives_capacity_error_and_fallback(runpod_fake, tmp_path):  # noqa: F811
    runpod_fake.configure(capacity={"NVIDIA GeForce RTX 4090": 0})
    assert_ok(run_playbook(runpod_fake, "fault_capacity.yml", tmp_path))
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0
    assert snap["counters"]["operations"]["podFindAndDeployOnDemand"] == 2


def test_429_and_5xx_retried_honouring_retry_after_and_401_message(runpod_fake, tmp_path):  # noqa: F811
    retry_after = 0.4
    proc = run_playbook(runpod_fake, "fault_retry.yml", tmp_path, {"retry_after": retry_after})
    assert_ok(proc)
    snap = runpod_fake.snapshot()
    assert snap["counters"]["injected"] == {"429": 1, "503": 1, "502": 1}
    assert snap["counters"]["unauthorized"] == 1, "a 401 must not be retried"
    assert snap["live_pods"] == 0
    # The three injected answers are the first three GraphQL requests; the gaps between the
    # retries follow the exponential backoff (502: 1 s) and honour Retry-After (429, 503).
    times = snap["request_times"]
    gaps = [b - a for a, b in zip(times[:4], times[1:4])]
    print("retry gaps after 502, 429, 503: %s" % ", ".join("%.2fs" % g for g in gaps))
    assert gaps[0] >= 1.0 and gaps[1] >= retry_after and gaps[2] >= retry_after
    assert gaps[1] < 2.0 and gaps[2] < 2.0, "Retry-After must replace the longer backoff"


def test_never_running_pod_is_terminated_after_timeout(runpod_fake, tmp_path):  # noqa: F811
    runpod_fake.configure(never_running_images=["example/never-starts:1"])
    assert_ok(run_playbook(runpod_fake, "fault_never_running.yml", tmp_path))
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0
    assert snap["counters"]["operations"]["podTerminate"] == 1
    assert snap["accumulated_cost_usd"] > 0  # it was billed while it existed


def test_spot_preemption_reported_on_next_run(runpod_fake, tmp_path):  # noqa: F811
    assert_ok(run_playbook(runpod_fake, "fault_preemption.yml", tmp_path))
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0
    assert snap["counters"]["operations"]["podBidResume"] == 1
