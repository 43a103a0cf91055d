"""The official ``runpod`` SDK works against the fake (keeps the fake honest).

The SDK inlines values into its GraphQL strings and reads RUNPOD_API_BASE_URL at call time.
"""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from runpod_fake import RunPodFake  # noqa: E402  pylint: disable=wrong-import-position

runpod = pytest.importorskip("runpod")

pytestmark = pytest.mark.integration


@pytest.fixture
def sdk(monkeypatch):
    with RunPodFake(api_key="sdk-key", created_delay=0.0, running_delay=0.05) as fake:
        monkeypatch.setenv("RUNPOD_API_BASE_URL", fake.url)
        monkeypatch.setattr(runpod, "api_key", "sdk-key")
        yield fake


def test_sdk_create_get_stop_resume_terminate(sdk):
    pod = runpod.create_pod("sdk-pod", "vllm/vllm-openai:v0.6.3", "NVIDIA GeForce RTX 4090",
                            cloud_type="COMMUNITY", ports="8000/http,22/tcp",
                            env={"MODEL": "Qwen/Qwen2.5-Coder-7B-Instruct"})
    assert pod["id"] and pod["machine"]["podHostId"]
    pods = runpod.get_pods()
    assert [p["name"] for p in pods] == ["sdk-pod"]
    assert pods[0]["env"] == ["MODEL=Qwen/Qwen2.5-Coder-7B-Instruct"]
    time.sleep(0.1)
    got = runpod.get_pod(pod["id"])
    assert got["desiredStatus"] == "RUNNING" and got["costPerHr"] == 0.6
    assert {p["privatePort"] for p in got["runtime"]["ports"]} == {8000, 22}
    assert runpod.stop_pod(pod["id"])["desiredStatus"] == "EXITED"
    assert runpod.resume_pod(pod["id"], 1)["desiredStatus"] == "RUNNING"
    runpod.terminate_pod(pod["id"])
    assert runpod.get_pods() == []
    assert sdk.snapshot()["live_pods"] == 0


def test_sdk_gpus_endpoints_and_errors(sdk):
    assert {g["id"] for g in runpod.get_gpus()} >= {"NVIDIA GeForce RTX 4090"}
    gpu = runpod.get_gpu("NVIDIA A100 80GB PCIe")
    assert gpu["lowestPrice"]["uninterruptablePrice"] == 2.10
    template = runpod.create_template("sdk-tpl", "runpod/worker-v1-vllm:v2.7.0", is_serverless=True,
                                      env={"MODEL_NAME": "m"})
    endpoint = runpod.create_endpoint("sdk-ep", template["id"], gpu_ids="ADA_24", flashboot=True)
    assert endpoint["flashBootType"] == "FLASHBOOT" and endpoint["workersMin"] == 0
    assert [e["id"] for e in runpod.get_endpoints()] == [endpoint["id"]]
    sdk.configure(capacity={"NVIDIA GeForce RTX 4090": 0})
    with pytest.raises(runpod.error.QueryError, match="no longer any instances available"):
        runpod.create_pod("sdk-pod", "img", "NVIDIA GeForce RTX 4090")
    runpod.api_key = "wrong"
    with pytest.raises(runpod.error.AuthenticationError):
        runpod.get_pods()
