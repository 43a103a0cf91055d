"""vast_instance, vast_offer_info and vast_info through ansible-playbook against the Vast.ai fake."""

import pytest

from _vast_helpers import assert_ok, run_playbook, vast_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_instance_lifecycle_check_real_repeat(vast_fake, tmp_path):  # noqa: F811
    proc = run_playbook(vast_fake, "instance_lifecycle.yml", tmp_path)
    assert_ok(proc)
    assert "hf_secret_never_shown" not in proc.stdout
    snap = vast_fake.snapshot()
    assert snap["live_instances"] == 0
    ops = snap["counters"]["operations"]
    assert ops["create"] == 1 and ops["destroy"] == 1 and ops["stop"] == 1 and ops["start"] == 1
    assert snap["accumulated_cost_usd"] > 0
