"""Fault cases of the Vast.ai modules, each through ansible-playbook against the fake."""

import pytest

from _vast_helpers import assert_ok, run_playbook, vast_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_rented_offer_falls_back_to_next_offer_and_plan_alternative(vast_fake, tmp_path):  # noqa: F811
    vast_fake.configure(steal_offers=[1002, 3001])
    assert_ok(run_playbook(vast_fake, "fault_capacity.yml", tmp_path, {"tls_dir": str(tmp_path / "tls")}))
    snap = vast_fake.snapshot()
    assert snap["live_instances"] == 0
    # Creates: 1002 (gone) and 1001 for the coder, 3001 (gone) for the H100, 2001 for the A100.
    # The pinned 1002 is found gone by its search and never reaches a create.
    assert snap["counters"]["capacity_failures"] == 2
    assert snap["counters"]["operations"]["create"] == 4


def test_429_and_5xx_retried_honouring_retry_after_and_401_message(vast_fake, tmp_path):  # noqa: F811
    retry_after = 0.4
    vast_fake.configure(fail_next=[
        {"status": 502, "path": "/api/v0/bundles"},
        {"status": 429, "retry_after": retry_after, "path": "/api/v0/bundles"},
        {"status": 503, "retry_after": retry_after, "path": "/api/v0/bundles"},
    ])
    assert_ok(run_playbook(vast_fake, "fault_retry.yml", tmp_path))
    snap = vast_fake.snapshot()
    assert snap["counters"]["injected"] == {"502": 1, "429": 1, "503": 1}
    assert snap["counters"]["unauthorized"] == 1, "a 401 must not be retried"
    times = snap["request_times"]
    gaps = [b - a for a, b in zip(times[:3], times[1:4])]
    print("retry gaps after 502, 429, 503: %s" % ", ".join("%.2fs" % g for g in gaps))
    # 502: exponential backoff (1 s first); 429 and 503: Retry-After replaces the 2 s/4 s backoff.
    assert gaps[0] >= 1.0 and gaps[1] >= retry_after and gaps[2] >= retry_after
    assert gaps[1] < 1.5 and gaps[2] < 1.5, "Retry-After must replace the longer backoff"


def test_never_running_instance_destroyed_after_timeout(vast_fake, tmp_path):  # noqa: F811
    vast_fake.configure(never_running_images=["example/never-starts:1"])
    assert_ok(run_playbook(vast_fake, "fault_never_running.yml", tmp_path))
    snap = vast_fake.snapshot()
    assert snap["live_instances"] == 0
    assert snap["counters"]["operations"]["destroy"] == 1
    assert snap["accumulated_cost_usd"] > 0  # it was billed while it existed


def test_bid_preemption_reported_on_next_run(vast_fake, tmp_path):  # noqa: F811
    assert_ok(run_playbook(vast_fake, "fault_preemption.yml", tmp_path))
    snap = vast_fake.snapshot()
    assert snap["live_instances"] == 0
    assert snap["counters"]["operations"]["start"] == 1
