"""runpod_pod / runpod_endpoint / runpod_info run in-process against the in-process fake."""

import json
import os
import sys

from unittest import mock

import pytest
from ansible.module_utils import _internal as _ansible_internal
from ansible.module_utils.testing import patch_module_args

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.modules import (  # noqa: E402
    runpod_endpoint,
    runpod_info,
    runpod_pod,
)

GPU = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def fake():
    with RunPodFake(api_key="unit-test-key-0123", created_delay=0.0, running_delay=0.0) as server:
        yield server


def run(module, args, capsys, check_mode=False, diff=False):
    args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    # Modules run as AnsiballZ payloads, where warnings go into the result. Once another test
    # in this process has loaded controller plugins, ansible routes them to Display instead.
    with patch_module_args(args), pytest.raises(SystemExit) as exit_info, \
            mock.patch.object(_ansible_internal, "is_controller", False):
        module.main()
    out = json.loads(capsys.readouterr().out)
    out["rc"] = exit_info.value.code
    return out


def pod_args(fake, **extra):
    args = {"api_token": "unit-test-key-0123", "api_endpoint": fake.url, "name": "coder", "stack_id": "unit",
            "image": "img:1", "gpu_type_id": GPU, "proxy_url_template": fake.proxy_template,
            "wait_sleep": 0, "wait_timeout": 5}
    args.update(extra)
    return args


def test_check_mode_creates_nothing(fake, capsys):
    out = run(runpod_pod, pod_args(fake), capsys, check_mode=True, diff=True)
    assert out["changed"] and out["runpod_pod"]["id"] is None
    assert out["diff"]["before"] == {"state": "absent"}
    assert out["diff"]["after"]["image"] == "img:1"
    assert fake.snapshot()["counters"]["operations"] == {"myself": 1}


@pytest.mark.parametrize("extra,message", [
    ({"image": None}, "image is required to create pod unit--coder"),
    ({"image": None, "gpu_type_id": None}, "image and gpu_type_id are required"),
    ({"stack_id": "a--b"}, "stack_id must not contain"),
    ({"interruptible": True}, "interruptible is True but all of the following are missing: bid_per_gpu"),
])
def test_bad_input_fails_before_renting(fake, capsys, extra, message):
    out = run(runpod_pod, pod_args(fake, **extra), capsys)
    assert out["failed"] and message in out["msg"]
    ops = fake.snapshot()["counters"]["operations"]
    assert "podFindAndDeployOnDemand" not in ops and "podRentInterruptable" not in ops


def test_capacity_error_result(fake, capsys):
    fake.configure(capacity={GPU: 0})
    out = run(runpod_pod, pod_args(fake), capsys)
    assert out["failed"] and out["capacity_error"] is True
    assert out["error_code"] == "SUPPLY_CONSTRAINT"


def test_other_errors_are_not_capacity_errors(fake, capsys):
    out = run(runpod_pod, pod_args(fake, gpu_type_id="NVIDIA Imaginary"), capsys)
    assert out["failed"] and out["capacity_error"] is False
    assert out["error_code"] == "BAD_USER_INPUT"


def test_drift_warns_or_recreates(fake, capsys):
    first = run(runpod_pod, pod_args(fake), capsys)
    assert first["changed"] and first["runpod_pod"]["ready"]
    warned = run(runpod_pod, pod_args(fake, image="img:2"), capsys)
    assert not warned["changed"] and "differs from the options in image" in json.dumps(warned["warnings"])
    replaced = run(runpod_pod, pod_args(fake, image="img:2", recreate=True), capsys)
    assert replaced["changed"] and replaced["runpod_pod"]["id"] != first["runpod_pod"]["id"]
    assert replaced["runpod_pod"]["image"] == "img:2"
    assert fake.snapshot()["live_pods"] == 1


def test_lost_answer_to_a_retried_deploy_leaves_no_twin(fake, capsys):
    # The deploy takes effect but its answer is lost; the retry rents a second pod.
    fake.configure(fail_next=[{"status": 502, "after_processing": True,
                               "operation": "podFindAndDeployOnDemand"}])
    out = run(runpod_pod, pod_args(fake, wait=False), capsys)
    assert out["changed"]
    snap = fake.snapshot()
    assert snap["counters"]["operations"]["podFindAndDeployOnDemand"] == 2
    assert snap["live_pods"] == 1 and snap["pods"][0]["id"] == out["runpod_pod"]["id"]
    assert "duplicate" in json.dumps(out["warnings"])


def test_wait_without_http_port_waits_for_the_container_only(fake, capsys):
    out = run(runpod_pod, pod_args(fake, ports=["22/tcp"]), capsys)
    assert out["runpod_pod"]["ready"] and out["runpod_pod"]["urls"] == {}
    assert out["progress"][-1].endswith("container running")


def test_no_wait_looks_once_at_a_pod_that_already_runs(fake, capsys):
    created = run(runpod_pod, pod_args(fake, wait=False), capsys)
    # Created by this call: not looked at, a caller waits for it.
    assert created["changed"] and created["runpod_pod"]["ready"] is False
    again = run(runpod_pod, pod_args(fake, wait=False), capsys)
    assert not again["changed"] and again["runpod_pod"]["ready"] is True
    assert again["runpod_pod"]["id"] == created["runpod_pod"]["id"]


def test_no_wait_reports_a_pod_still_starting_as_not_ready(capsys):
    with RunPodFake(api_key="unit-test-key-0123", created_delay=0.0, running_delay=60.0) as slow:
        run(runpod_pod, pod_args(slow, wait=False), capsys)
        again = run(runpod_pod, pod_args(slow, wait=False), capsys)
    assert not again["changed"] and again["runpod_pod"]["ready"] is False


def test_endpoint_needs_a_template_or_image(fake, capsys):
    out = run(runpod_endpoint, {"api_token": "unit-test-key-0123", "api_endpoint": fake.url, "name": "e",
                                "stack_id": "unit"}, capsys)
    assert out["failed"] and "template_id, image" in out["msg"]


def test_info_is_never_changed(fake, capsys):
    run(runpod_pod, pod_args(fake, wait=False), capsys)
    out = run(runpod_info, {"api_token": "unit-test-key-0123", "api_endpoint": fake.url, "stack_id": "unit"},
              capsys, check_mode=True)
    assert out["changed"] is False and [p["name"] for p in out["pods"]] == ["coder"]
    other = run(runpod_info, {"api_token": "unit-test-key-0123", "api_endpoint": fake.url, "stack_id": "other"}, capsys)
    assert other["pods"] == [] and other["cost_per_hr"] == 0
