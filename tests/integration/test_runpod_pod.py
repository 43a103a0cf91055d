"""runpod_pod through real ansible-playbook runs against the RunPod fake."""

import pytest

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_pod_lifecycle_check_real_repeat(runpod_fake, tmp_path):  # noqa: F811
    proc = run_playbook(runpod_fake, "pod_lifecycle.yml", tmp_path)
    assert_ok(proc)
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0
    ops = snap["counters"]["operations"]
    assert ops["podFindAndDeployOnDemand"] == 1
    assert ops["podStop"] == 1 and ops["podResume"] == 1 and ops["podTerminate"] == 1
    print("pod lifecycle playbook: %.1fs" % proc.wall_s)
