"""runpod_endpoint and runpod_info through ansible-playbook against the RunPod fake."""

import pytest

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_endpoint_lifecycle_and_info(runpod_fake, tmp_path):  # noqa: F811
    proc = run_playbook(runpod_fake, "endpoint_lifecycle.yml", tmp_path)
    assert_ok(proc)
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0 and snap["live_endpoints"] == 0 and snap["templates"] == []
    ops = snap["counters"]["operations"]
    assert ops["saveEndpoint"] >= 3 and ops["deleteEndpoint"] == 1 and ops["deleteTemplate"] == 1
