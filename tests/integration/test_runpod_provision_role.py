"""Role gpu_provision: fallback along a plan's alternatives, RunPod pods and serverless."""

import json

import pytest

from _runpod_helpers import assert_ok, run_playbook, runpod_fake  # noqa: F401  pylint: disable=unused-import

pytestmark = pytest.mark.integration

MODEL = {"key": "qwen2.5-coder-7b", "hf_repo": "Qwen/Qwen2.5-Coder-7B-Instruct",
         "quantization": "fp16", "max_model_len": 16384}


def _option(gpu_id, gpu_name, pricing, price, provider="runpod"):
    return {"provider": provider, "offer_id": "%s:%s:%s" % (provider, gpu_id, pricing),
            "pricing": pricing, "gpu": {"name": gpu_name, "provider_id": gpu_id, "count": 1,
                                        "vram_gb": 24}, "price_per_hour_usd": price,
            "model": MODEL, "engine": "vllm", "roles": ["coder"]}


def plan():
    coder = dict(_option("NVIDIA GeForce RTX 4090", "RTX 4090", "spot", 0.34),
                 name="coder-qwen2-5-coder-7b", region="EU-RO-1")
    coder["alternatives"] = [_option("NVIDIA A100 80GB PCIe", "A100 80GB", "on_demand", 2.10)]
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
