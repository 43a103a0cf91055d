"""The provider fakes bill rented machines like the providers: GPU seconds while running, disk
while stopped, nothing after removal, on an accelerated clock; RunPod refuses a resume when the
host has no free GPU. Driven through the collection's own clients."""

import functools
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fakes"))

from _billing import HOURS_PER_MONTH, SimClock  # noqa: E402  pylint: disable=wrong-import-position
from runpod_fake import HOST_CAPACITY_MESSAGE, RunPodFake  # noqa: E402  pylint: disable=wrong-import-position
from vast_fake import VastFake  # noqa: E402  pylint: disable=wrong-import-position

from ansible_collections.llmops.codestack.plugins.module_utils._runpod import CapacityError, RunPodClient  # noqa: E402
from ansible_collections.llmops.codestack.plugins.module_utils._vast import VastClient  # noqa: E402

SCALE = 3600.0  # one wall second bills one hour


def _spec():
    return {"name": "s--a", "imageName": "vllm/vllm-openai:v0.11.0", "gpuTypeId": "NVIDIA GeForce RTX 4090",
            "gpuCount": 1, "volumeInGb": 50, "containerDiskInGb": 20, "cloudType": "COMMUNITY",
            "ports": "8000/http"}


def test_clock_scales_and_stays_continuous():
    clock = SimClock(1.0)
    before = clock.now()
    assert abs(before - time.time()) < 1.0   # starts at wall time (slack for a loaded machine)
    clock.set_scale(1000)
    time.sleep(0.02)
    after = clock.now()
    # At least the 0.02 wall seconds slept, times the scale; a loaded machine oversleeps.
    assert 15 < after - before < 0.02 * 1000 * 250
    assert clock.wall_seconds(100) == pytest.approx(0.1)


def test_runpod_ledger_running_stopped_terminated_and_refused_resume():
    with RunPodFake(api_key="k", created_delay=0, running_delay=0, clock_scale=SCALE) as fake:
        client = RunPodClient("k", fake.url, retries=0)
        pod = client.deploy_pod(_spec())
        time.sleep(0.1)
        client.stop_pod(pod["id"])
        time.sleep(0.1)
        fake.configure(resume_refused=[pod["id"]])
        with pytest.raises(CapacityError) as refused:
            client.resume_pod(pod["id"], 1)
        assert str(refused.value).endswith(HOST_CAPACITY_MESSAGE) or HOST_CAPACITY_MESSAGE in str(refused.value)
        # A fresh pod of the same GPU type still deploys (the GPU is missing on that host only).
        other = client.deploy_pod(dict(_spec(), name="s--b"))
        client.terminate_pod(other["id"])
        fake.configure(resume_refused=[])
        client.resume_pod(pod["id"], 1)
        time.sleep(0.05)
        client.terminate_pod(pod["id"])
        time.sleep(0.05)
        ledger = fake.snapshot()["ledger"]
    lines = [r for r in ledger["lines"] if r["resource"] == pod["id"]]
    assert [r["kind"] for r in lines] == ["gpu", "storage", "gpu"]
    running_rate = 0.60 + 70 * 0.10 / HOURS_PER_MONTH
    assert lines[0]["usd_per_hour"] == pytest.approx(running_rate)
    # At least the 0.1 wall seconds slept, times the scale (plus the calls' own time).
    assert 0.1 * SCALE <= lines[0]["seconds"] < 0.1 * SCALE * 50
    assert lines[1]["usd_per_hour"] == pytest.approx(50 * 0.20 / HOURS_PER_MONTH)
    # Nothing is billed after the terminate: every segment is closed.
    final = ledger["total_usd"]
    assert final == pytest.approx(sum(r["usd"] for r in ledger["lines"]), abs=1e-5)
    events = [h["event"] for h in fake.history if h.get("pod") == pod["id"] and h["event"] not in ("ready", "served")]
    assert events[:4] == ["created", "stopped", "resume_refused", "resumed"]
    assert events[-1] == "terminated"


def test_vast_ledger_running_stopped_destroyed_with_resume_delay():
    # 7,200 provider seconds = two wall seconds at this scale: long enough that the next call
    # still sees "loading" on a loaded machine; the poll below ends as soon as it is "running".
    with VastFake(api_key="k", created_delay=0, running_delay=0, resume_delay=7200, clock_scale=SCALE) as fake:
        client = VastClient("k", fake.url, retries=0)
        inst = client.create_instance(1001, {"client_id": "me", "image": "img", "disk": 40, "label": "s--a",
                                             "env": {"-p 8000:8000": "1"}})
        time.sleep(0.05)
        assert client.get_instance(inst)["actual_status"] == "running"
        client.set_state(inst, "stopped")
        time.sleep(0.05)
        client.set_state(inst, "running")
        assert client.get_instance(inst)["actual_status"] == "loading"
        deadline = time.monotonic() + 60
        while client.get_instance(inst)["actual_status"] != "running":
            assert time.monotonic() < deadline, "the resumed instance never ran"
            time.sleep(0.2)
        client.destroy_instance(inst)
        snap = fake.snapshot()
    kinds = [r["kind"] for r in snap["ledger"]["lines"]]
    assert kinds == ["gpu", "storage", "gpu"]
    storage = snap["ledger"]["lines"][1]
    assert storage["usd_per_hour"] == pytest.approx(40 * 0.15 / HOURS_PER_MONTH)
    assert [e["event"] for e in snap["events"]] == ["created", "stopped", "started", "destroyed"]
    assert snap["live_instances"] == 0


def test_fakes_rent_at_the_catalog_prices_and_jump_over_stopped_gaps():
    """catalog_prices: the RunPod GPU types and the Vast.ai offers at catalog/offers.yml's
    prices (what a plan is priced at), the disks at catalog/scaling.yml's; advance_s bills a
    skipped gap as it stands (a stopped pod's volume)."""
    import yaml

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with open(os.path.join(root, "catalog", "offers.yml")) as handle:
        offers = dict((o["id"], o) for o in yaml.safe_load(handle)["offers"])
    with open(os.path.join(root, "catalog", "scaling.yml")) as handle:
        scaling = dict((e["id"], e) for e in yaml.safe_load(handle)["scaling"])
    fake = RunPodFake(api_key="k", created_delay=0, running_delay=0, clock_scale=1.0, catalog_prices=True).start()
    try:
        types = dict((g["id"], g) for g in fake.config["gpu_types"])
        h100 = types["NVIDIA H100 80GB HBM3"]
        assert h100["communityPrice"] == offers["runpod:NVIDIA H100 80GB HBM3:on_demand"]["price_per_hour"]
        assert h100["communitySpotPrice"] == offers["runpod:NVIDIA H100 80GB HBM3:spot"]["price_per_hour"]
        rtx = types["NVIDIA GeForce RTX 4090"]
        # secure: the dearest on-demand offer (EU-RO-1), never below the any-region one
        assert rtx["securePrice"] == offers["runpod:NVIDIA GeForce RTX 4090:on_demand:EU-RO-1"]["price_per_hour"]
        assert rtx["communityPrice"] == offers["runpod:NVIDIA GeForce RTX 4090:on_demand"]["price_per_hour"]
        assert fake.config["serverless_prices"]["ADA_24"] == pytest.approx(
            offers["runpod_serverless:ADA_24:serverless"]["price_per_hour"] / 3600.0)
        client = RunPodClient("k", fake.url, retries=0)
        pod = client.deploy_pod(_spec())
        assert pod["costPerHr"] == offers["runpod:NVIDIA GeForce RTX 4090:on_demand"]["price_per_hour"]
        client.stop_pod(pod["id"])
        before = fake.ledger.total()
        fake.configure(advance_s=730 * 3600.0)   # a month stopped: the 50 GB volume, per GB-month
        assert fake.ledger.total() - before == pytest.approx(
            50 * scaling["runpod"]["storage_stopped_usd_per_gb_month"], rel=0.01)
        with pytest.raises(ValueError):
            fake.clock.advance(-1)
    finally:
        fake.stop()
    vast = VastFake(api_key="k", catalog_prices=True)
    by_id = dict((o["id"], o) for o in vast.config["offers"])
    assert by_id[1001]["dph_total"] == offers["vast:RTX 4090:on_demand"]["price_per_hour"]   # Oslo: no NO offer
    assert by_id[1003]["dph_total"] == pytest.approx(2 * offers["vast:RTX 4090:on_demand:x2"]["price_per_hour"])
    assert by_id[3001]["dph_total"] == offers["vast:H100 SXM:on_demand:NL"]["price_per_hour"]   # Amsterdam
    assert by_id[1001]["min_bid"] == offers["vast:RTX 4090:bid"]["price_per_hour"]
    assert all(o["storage_cost"] == scaling["vast"]["storage_stopped_usd_per_gb_month"]
               for o in vast.config["offers"])


@pytest.mark.parametrize("provider", ["runpod", "vast"])
def test_the_disks_gpu_provision_rents_bill_what_the_plan_priced(provider):
    """A planned pod or instance, rented with the disks of its plan option (``disk``, what
    gpu_provision passes) at the catalog's prices, up for the plan's up hours and stopped for
    its stopped hours: the fake's storage ledger is the plan's stopped-storage figure, and the
    whole ledger the plan's billed estimate."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "module_utils"))
    from _planner_helpers import blueprint, intent, task  # pylint: disable=import-outside-toplevel
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog  # noqa: E501  pylint: disable=import-outside-toplevel
    from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan  # noqa: E501  pylint: disable=import-outside-toplevel

    plan = build_plan(blueprint(budget_usd=50, deadline_hours=168, providers=[provider]),
                      intent([task(r, "core", 400000, 20000) for r in ("architect", "coder", "debugger", "reviewer")]),
                      load_catalog(), generated_at="2026-12-01T00:00:00Z")
    dep = next(d for d in plan["deployments"] if d["pricing"] == "on_demand")
    billed, terms = dep["billed"], dep["cost_terms"]["scaling"]
    disk = dep["disk"]
    assert disk["volume_gb"] == billed["storage_gb"] >= dep["model"]["weight_gb"]
    assert all(a["disk"]["volume_gb"] >= a["model"]["weight_gb"] for a in dep["alternatives"] if a["provider"] == provider)
    if provider == "runpod":
        gpu = {"id": dep["gpu"]["provider_id"], "displayName": dep["gpu"]["name"], "memoryInGb": dep["gpu"]["vram_gb"],
               "maxGpuCount": 8}   # at the catalog's price (catalog_prices)
        fake = RunPodFake(api_key="k", created_delay=0, running_delay=0, clock_scale=1.0, catalog_prices=True,
                          gpu_types=[gpu]).start()
        client = RunPodClient("k", fake.url, retries=0)
        pod = client.deploy_pod(dict(_spec(), gpuTypeId=dep["gpu"]["provider_id"], volumeInGb=int(disk["volume_gb"]),
                                     containerDiskInGb=int(disk["container_disk_gb"]), volumeMountPath="/workspace"))
        assert pod["costPerHr"] == pytest.approx(dep["price_per_hour_usd"])
        stop, remove = functools.partial(client.stop_pod, pod["id"]), functools.partial(client.terminate_pod, pod["id"])
    else:
        offer = dict(VastFake().config["offers"][0], id=9001, gpu_name=dep["gpu"]["provider_id"],
                     num_gpus=dep["gpu"]["count"], dph_total=dep["price_per_hour_usd"])
        fake = VastFake(api_key="k", created_delay=0, running_delay=0, clock_scale=1.0, catalog_prices=True,
                        offers=[offer]).start()   # storage_cost: the catalog's (catalog_prices)
        client = VastClient("k", fake.url, retries=0)
        inst = client.create_instance(offer["id"], {"client_id": "me", "image": "img", "disk": int(disk["volume_gb"]),
                                                    "label": "s--a", "env": {"-p 8000:8000": "1"}})
        stop, remove = functools.partial(client.set_state, inst, "stopped"), functools.partial(client.destroy_instance, inst)
    try:
        fake.configure(advance_s=billed["up_hours"] * 3600.0)
        stop()
        fake.configure(advance_s=billed["stopped_hours"] * 3600.0)
        remove()
        ledger = fake.snapshot()["ledger"]
    finally:
        fake.stop()
    stopped_storage = billed["stopped_hours"] * billed["storage_gb"] * terms["storage_stopped_usd_per_gb_month"] / HOURS_PER_MONTH
    assert ledger["storage_usd"] == pytest.approx(stopped_storage, rel=0.01)
    # RunPod bills the disks while running too; Vast.ai's dph_total includes them (the plan
    # adds its running storage price on top: the only part of the plan above this ledger).
    running_storage = billed["storage_usd"] - stopped_storage
    want = dep["cost_usd"] - (running_storage if provider == "vast" else 0.0)
    assert ledger["total_usd"] == pytest.approx(want, rel=0.01)
