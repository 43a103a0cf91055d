"""RunPodClient (module_utils/_runpod.py) against the in-process RunPod fake."""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from runpod_fake import CAPACITY_MESSAGE, RunPodFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.module_utils import _runpod  # noqa: E402
from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError  # noqa: E402

GPU = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def fake():
    with RunPodFake(api_key="k", created_delay=0.0, running_delay=0.05) as server:
        yield server


def client(fake, token="k", sleeps=None):
    def sleep(seconds):
        if sleeps is not None:
            sleeps.append(seconds)
    return _runpod.RunPodClient(token, fake.url, sleep=sleep, backoff=0.01)


def spec(name="it--pod", **extra):
    data = {"name": name, "imageName": "img:1", "gpuTypeId": GPU, "gpuCount": 1,
            "cloudType": "SECURE", "ports": "8000/http",
            "env": [{"key": _runpod.STACK_ENV, "value": "it"}]}
    data.update(extra)
    return data


def test_values_travel_as_variables_not_in_the_query(fake):
    nasty = 'it--pod "}) { id } mutation { podTerminate'
    pod = client(fake).deploy_pod(spec(name=nasty, dockerArgs='--x "quoted" \\ back'))
    got = client(fake).get_pod(pod["id"])
    assert got["name"] == nasty and got["dockerArgs"] == '--x "quoted" \\ back'
    for name in dir(_runpod):
        if name.startswith(("Q_", "M_")):
            assert '"' not in getattr(_runpod, name), "query %s must not carry values" % name


def test_pod_lifecycle_and_runtime_ports(fake):
    c = client(fake)
    pod = c.deploy_pod(spec())
    assert pod["desiredStatus"] == "RUNNING" and pod["runtime"] is None
    assert pod["costPerHr"] == 0.69  # SECURE on-demand price of the fake
    time.sleep(0.1)
    pod = c.get_pod(pod["id"])
    assert pod["runtime"]["ports"][0]["privatePort"] == 8000
    assert _runpod.pod_stack_id(pod) == "it"
    assert c.stop_pod(pod["id"])["desiredStatus"] == "EXITED"
    assert c.resume_pod(pod["id"], 1)["desiredStatus"] == "RUNNING"
    c.terminate_pod(pod["id"])
    assert c.list_pods() == []
    with pytest.raises(ApiError, match="pod not found to terminate"):
        c.terminate_pod(pod["id"])


def test_spot_rent_and_bid_resume(fake):
    c = client(fake)
    pod = c.deploy_pod(spec(bidPerGpu=0.5), interruptible=True)
    assert pod["podType"] == "INTERRUPTABLE" and pod["costPerHr"] == 0.5
    fake.preempt(pod["id"])
    assert c.get_pod(pod["id"])["desiredStatus"] == "EXITED"
    assert c.resume_pod(pod["id"], 1, bid_per_gpu=0.45)["costPerHr"] == 0.45


def test_supply_constraint_is_a_capacity_error(fake):
    fake.configure(capacity={GPU: 1})
    c = client(fake)
    c.deploy_pod(spec())
    with pytest.raises(_runpod.CapacityError) as info:
        c.deploy_pod(spec(name="it--second"))
    assert info.value.code == "SUPPLY_CONSTRAINT" and info.value.message == CAPACITY_MESSAGE
    assert isinstance(info.value, ApiError)


def test_bad_key_gives_one_clear_message_without_retries(fake):
    with pytest.raises(ApiError) as info:
        client(fake, token="wrong").list_pods()
    assert info.value.status == 401
    assert str(info.value) == "HTTP 401: RunPod rejected the API key: check api_token (or RUNPOD_API_KEY)"
    assert fake.snapshot()["counters"]["unauthorized"] == 1


def test_429_and_5xx_retried_honouring_retry_after(fake):
    fake.configure(fail_next=[{"status": 429, "retry_after": 0.25}, {"status": 503, "retry_after": 0.5},
                              {"status": 502}])
    sleeps = []
    assert client(fake, sleeps=sleeps).list_pods() == []
    assert len(sleeps) == 3
    assert 0.25 <= sleeps[0] < 0.3 and 0.5 <= sleeps[1] < 0.6  # Retry-After (plus jitter)
    assert sleeps[2] < 0.1  # 502: exponential backoff (0.01 s base here)


def test_graphql_errors_map_to_api_error(fake):
    c = client(fake)
    with pytest.raises(ApiError) as info:
        c.deploy_pod(spec(gpuTypeId="NVIDIA Imaginary 1"))
    assert info.value.code == "BAD_USER_INPUT" and info.value.status == 200
    with pytest.raises(ApiError, match="Cannot query field"):
        c.graphql("query { myself { nonsense } }")


def test_gpu_types_with_prices(fake):
    fake.configure(capacity={GPU: 0})
    gpus = client(fake).gpu_types(GPU, gpu_count=1)
    assert len(gpus) == 1
    assert gpus[0]["lowestPrice"]["stockStatus"] == "None"
    assert gpus[0]["communitySpotPrice"] == 0.34
    assert len(client(fake).gpu_types()) == 3


def test_endpoint_and_template_round_trip(fake):
    c = client(fake)
    tpl = c.save_template({"name": "it--ep", "imageName": "runpod/worker-v1-vllm:v2.7.0",
                           "isServerless": True, "env": [{"key": "MODEL_NAME", "value": "m"}]})
    ep = c.save_endpoint({"name": "it--ep", "templateId": tpl["id"], "gpuIds": "ADA_24",
                          "workersMin": 0, "workersMax": 2, "flashBootType": "FLASHBOOT"})
    ep2 = c.save_endpoint({"id": ep["id"], "name": "it--ep", "templateId": tpl["id"],
                           "gpuIds": "ADA_24,AMPERE_24", "idleTimeout": 60})
    assert ep2["id"] == ep["id"] and ep2["idleTimeout"] == 60 and ep2["workersMax"] == 2
    assert [e["id"] for e in c.list_endpoints()] == [ep["id"]]
    c.delete_endpoint(ep["id"])
    c.delete_template("it--ep")
    assert c.list_endpoints() == [] and c.list_templates() == []


@pytest.mark.parametrize("remote,expected", [
    ("stack--name", ("stack", "name")),
    ("stack--name--x", ("stack", "name--x")),
    ("plain", (None, "plain")),
    (None, (None, None)),
])
def test_split_name(remote, expected):
    assert _runpod.split_name(remote) == expected
