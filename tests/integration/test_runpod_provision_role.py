"""Role gpu_provision: fallback along a plan's alternatives, RunPod pods and serverless."""

import json
import os
import shlex

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.filter.vllm import vllm_args

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration

MODEL = {"key": "qwen2.5-coder-7b", "hf_repo": "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ",
         "revision": "main", "quantization": "awq", "vllm_quantization": "awq_marlin",
         "gated": False, "max_model_len": 16384}


def _option(gpu_id, gpu_name, pricing, price, provider="runpod"):
    return {"provider": provider, "offer_id": "%s:%s:%s" % (provider, gpu_id, pricing),
            "pricing": pricing, "gpu": {"name": gpu_name, "provider_id": gpu_id, "count": 1,
                                        "vram_gb": 24}, "price_per_hour_usd": price,
            "model": MODEL, "engine": "vllm", "roles": ["coder"]}


def plan():
    coder = dict(_option("NVIDIA GeForce RTX 4090", "RTX 4090", "spot", 0.34),
                 name="coder-qwen2-5-coder-7b", region="EU-RO-1")
    # the disks the planner sized from the weights (plan.json `disk`, what it priced)
    coder["alternatives"] = [dict(_option("NVIDIA A100 80GB PCIe", "A100 80GB", "on_demand", 2.10),
                                  disk={"volume_gb": 26.0, "container_disk_gb": 20.0})]
    reviewer = dict(_option("ADA_24,AMPERE_24", "RTX 4090", "serverless", 1.12,
                            provider="runpod_serverless"), name="reviewer-qwen")
    return {"schema_version": 1, "stack_id": "codestack-roletest",
            "deployments": [coder, reviewer]}


def test_role_falls_back_on_supply_constraint(runpod_fake, tmp_path):  # noqa: F811
    runpod_fake.configure(capacity={"NVIDIA GeForce RTX 4090": 0})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan()))
    proc = run_playbook(runpod_fake, "role_fallback.yml", tmp_path, {"plan_file": str(plan_file)})
    assert_ok(proc)
    assert "sk-secret-vllm-key" not in proc.stdout
    snap = runpod_fake.snapshot()
    assert snap["live_pods"] == 0 and snap["live_endpoints"] == 0
    ops = snap["counters"]["operations"]
    # Spot RTX 4090 refused once (check mode rents nothing, the repeat finds the A100 pod),
    # the A100 alternative rented once.
    assert ops["podRentInterruptable"] == 1 and ops["podFindAndDeployOnDemand"] == 1
    # The pod runs what vllm_server builds (the same builder as Molecule and Kubernetes) on the
    # image pinned in catalog/images.yml: the plan's weights, quantization and context.
    created = [h for h in snap["history"] if h["event"] == "created"]
    with open(os.path.join(os.path.dirname(__file__), "..", "..", "catalog", "images.yml")) as handle:
        image = next(i for i in yaml.safe_load(handle)["images"] if i["id"] == "vllm")["image"]
    expected = vllm_args({"model": MODEL["hf_repo"], "revision": "main", "served_model_name": MODEL["key"],
                          "host": "0.0.0.0", "port": 8000, "dtype": "auto", "quantization": "awq_marlin",
                          "tensor_parallel_size": 1, "max_model_len": 16384,
                          "gpu_memory_utilization": 0.9, "enable_prefix_caching": True})
    assert created and all(h["image"] == image == "vllm/vllm-openai:v0.32.0" for h in created)
    for event in created:
        argv = shlex.split(event["docker_args"])
        assert argv == expected
        assert argv[:4] == ["--model", "Qwen/Qwen2.5-Coder-7B-Instruct-AWQ", "--revision", "main"]
        assert "--api-key" not in argv and "sk-secret-vllm-key" not in event["docker_args"]
    # The rented pod keeps the weights on a volume of the plan's size, the Hugging Face cache on it.
    rented = created[-1]
    assert (rented["volume_gb"], rented["container_disk_gb"], rented["volume_mount_path"]) == (26, 20, "/workspace")
    assert {"HF_HOME", "VLLM_CACHE_ROOT"} <= set(rented["env_names"])


def test_gated_weights_without_a_token_fail_before_renting(runpod_fake, tmp_path):  # noqa: F811
    gated = plan()
    for option in [gated["deployments"][0]] + gated["deployments"][0]["alternatives"]:
        option["model"] = dict(MODEL, hf_repo="meta-llama/Llama-3.1-8B-Instruct", gated=True,
                               quantization="fp16", vllm_quantization=None)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(gated))
    proc = run_playbook(runpod_fake, "role_fallback.yml", tmp_path, {"plan_file": str(plan_file)})
    assert proc.returncode != 0
    assert "meta-llama/Llama-3.1-8B-Instruct is gated on Hugging Face" in proc.stdout
    ops = runpod_fake.snapshot()["counters"]["operations"]
    assert "podRentInterruptable" not in ops and "podFindAndDeployOnDemand" not in ops


def test_role_rejects_unknown_provider_before_renting(runpod_fake, tmp_path):  # noqa: F811
    bad = plan()
    bad["deployments"][0]["alternatives"][0]["provider"] = "nowhere"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(bad))
    proc = run_playbook(runpod_fake, "role_fallback.yml", tmp_path, {"plan_file": str(plan_file)})
    assert proc.returncode != 0
    assert "asked for: runpod, nowhere" in proc.stdout
    ops = runpod_fake.snapshot()["counters"]["operations"]
    assert "podRentInterruptable" not in ops and "podFindAndDeployOnDemand" not in ops
