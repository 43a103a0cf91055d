"""Cost model: throughput, fit in VRAM, hours and cost of one deployment."""

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    ROLES,
    enumerate_options,
    role_needs,
    serving_for,
)

from _planner_helpers import blueprint

ALL = ["local", "runpod", "runpod_serverless", "vast", "hetzner", "exoscale"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture(scope="module")
def options(catalog):
    bp = validate_blueprint(blueprint(providers=ALL))
    found, rejected = enumerate_options(catalog, bp.constraints)
    assert rejected > 0
    return dict(((o.offer.id, o.model.id, o.quant_id), o) for o in found)


def test_decode_is_efficiency_times_bandwidth_over_weight_bytes(options, catalog):
    p = catalog.cost_model["default"]
    opt = options[("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-7b", "awq")]
    assert opt.decode == pytest.approx(p.decode_efficiency * 1008 / 5.6)
    # the all-roles deployment runs 5 sequences (1+2+1+1): the full batching factor
    assert opt.batching == p.batching_factor
    assert opt.agg_decode == pytest.approx(opt.decode * p.batching_factor)
    assert opt.batching_for(1) == 1.0
    assert opt.batching_for(2) == pytest.approx(1 + (p.batching_factor - 1) / 3)
    assert opt.prefill == pytest.approx(p.prefill_mfu * 165e12 / (2 * 7.6e9))
    assert opt.prefill > opt.agg_decode   # prefill is much faster than decode
    assert not opt.measured


def test_moe_reads_only_active_weights(options):
    dense = options[("vast:A100 SXM4:on_demand", "qwen2.5-coder-14b", "fp16")]
    moe = options[("vast:A100 SXM4:on_demand", "deepseek-coder-v2-lite", "fp16")]
    assert moe.decode == pytest.approx(0.75 * 2039 / (31.4 * 2.4 / 15.7))
    assert moe.decode > 5 * dense.decode


def test_two_gpus_scale_with_tensor_parallel_efficiency(options, catalog):
    p = catalog.cost_model["default"]
    # any single H100 SXM offer (RunPod serverless beats the pod on every economic term, so
    # the single on-demand pod is pruned): decode depends on the GPU only
    one = [o for key, o in options.items() if key[1:] == ("qwen2.5-coder-32b", "fp8")
           and o.gpu.id == "h100-sxm" and o.offer.count == 1 and not o.measured][0]
    two = options[("runpod:NVIDIA H100 80GB HBM3:on_demand:x2", "qwen2.5-coder-32b", "fp8")]
    assert two.decode == pytest.approx(one.decode * (1 + p.multi_gpu_efficiency))
    assert two.price == pytest.approx(2 * 4.76)


def test_local_uses_the_measured_throughput(options, catalog):
    # the figures of benchmarks/cpu_throughput.py's result file (test_catalog.py checks that)
    meas = catalog.measurements["local:cpu:owned/smollm2-135m/q4_1"]
    opt = options[("local:cpu:owned", "smollm2-135m", "q4_1")]
    assert opt.measured and opt.decode == meas.decode_tok_s and opt.prefill == meas.prefill_tok_s
    assert opt.agg_decode == meas.decode_tok_s      # no batching factor on the CPU
    assert opt.price == 0 and opt.engine == "llamacpp"


@pytest.mark.parametrize("offer, model, quant, roles, fits, why", [
    ("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-7b", "awq", ROLES, True,
     "5.6 + 16k x 5 x 56 KB = 4.7"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-7b", "fp16", ("coder",), True,
     "15.2 + 1.9"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-14b", "fp16", ("coder",), False,
     "29.5 > 24"),
    # the seeds' own set-up: one role, one sequence, a context that fits next to the weights
    ("runpod:NVIDIA GeForce RTX 4090:spot", "codellama-34b", "awq", ("reviewer",), True,
     "18.3 + 8k x 192 KB = 1.6 <= 20.1"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "codellama-34b", "awq", ("architect",), False,
     "18.3 + 16k x 192 KB = 3.2 > 20.1"),
    ("vast:A100 SXM4:on_demand", "codellama-34b", "fp16", ("reviewer",), True,
     "67.5 + 1.6 <= 70.5"),
    ("vast:A100 SXM4:on_demand", "codellama-34b", "fp16", ("architect", "coder"), False,
     "67.5 + 16k x 3 x 192 KB = 9.7 > 70.5"),
    ("runpod:NVIDIA H100 80GB HBM3:on_demand:x2", "codellama-34b", "fp16", ROLES, True,
     "2 x 80 GB"),
    ("runpod:NVIDIA H100 80GB HBM3:spot", "qwen2.5-coder-32b", "fp8", ROLES, True,
     "33.5 + 16k x 5 x 256 KB = 21.5"),
    ("local:cpu:owned", "smollm2-135m", "q4_1", ROLES, True, "tiny GGUF"),
])
def test_kv_cache_is_sized_from_the_roles(options, catalog, offer, model, quant, roles, fits,
                                          why):
    needs = role_needs(catalog.cost_model["default"])
    opt = options.get((offer, model, quant))
    assert (opt is not None and serving_for(opt, roles, needs) is not None) == fits, why


@pytest.mark.parametrize("offer, model, quant, why", [
    ("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-7b", "fp8", "no fast FP8"),
    ("vast:A100 SXM4:on_demand", "qwen2.5-coder-32b", "fp8", "A100 has no FP8"),
    ("local:cpu:owned", "qwen2.5-coder-7b", "awq", "vLLM formats need a GPU"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "smollm2-135m", "q4_1", "GGUF is CPU only"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "qwen2.5-coder-14b", "fp16", "29.5 GB > 24 GB"),
    ("runpod:NVIDIA GeForce RTX 4090:spot", "codestral-22b", "awq",
     "no verified repository holds 4-bit Codestral weights: not offered"),
])
def test_options_that_can_never_run(options, offer, model, quant, why):
    assert (offer, model, quant) not in options, why


def test_serving_settings_follow_the_roles(options, catalog):
    needs = role_needs(catalog.cost_model["default"])
    opt = options[("vast:A100 SXM4:on_demand", "qwen2.5-coder-7b", "awq")]
    assert serving_for(opt, ("reviewer",), needs) == (8192, 1)
    assert serving_for(opt, ("coder", "reviewer"), needs) == (16384, 3)
    assert serving_for(opt, ROLES, needs) == (16384, 5)
    small = options[("local:cpu:owned", "smollm2-135m", "q4_1")]
    assert serving_for(small, ("coder",), needs) == (8192, 2)   # capped by the model's context


def test_no_option_exceeds_vram_for_the_roles_it_can_serve(options, catalog):
    from ansible_collections.llmops.codestack.plugins.module_utils._optimiser import subsets
    p = catalog.cost_model["default"]
    needs = role_needs(p)
    for opt in options.values():
        for roles in subsets(ROLES):
            serving = serving_for(opt, roles, needs)
            if serving is None:
                continue
            kv = opt.model.kv_kb_per_token * 1024 * serving[0] * serving[1] / 1e9
            assert opt.weight_gb + kv + p.overhead_gb <= \
                opt.gpu.vram_gb * opt.offer.count * p.gpu_memory_utilization + 1e-9


def test_hours_and_cost_of_one_deployment(options, catalog):
    p = catalog.cost_model["default"]
    opt = options[("vast:RTX 4090:on_demand", "qwen2.5-coder-7b", "awq")]
    tin, tout = 1000000, 50000
    rework = 1 + p.rework_per_point * max(0, p.rework_reference_score - (88.4 - 1.5))
    work = rework * (tout / opt.agg_decode + tin * (1 - p.prefix_cache_hit) / opt.prefill)
    cold = catalog.cold_start["vast"]
    cold_s = (cold.scheduling_s + cold.image_pull_s + 5.6 * 8 / cold.download_gbps
              + 5.6 / cold.load_gb_per_s + catalog.engines["vllm"].init_s)
    assert opt.cold_s == pytest.approx(cold_s)
    hours, cost = opt.block(tin, tout)
    assert hours == pytest.approx((work + cold_s) / 3600)
    assert cost == pytest.approx(hours * 0.48)


def test_spot_and_bid_pay_for_interruptions(options, catalog):
    p = catalog.cost_model["default"]
    bid = options[("vast:RTX 4090:bid", "qwen2.5-coder-7b", "awq")]
    ondemand = options[("vast:RTX 4090:on_demand", "qwen2.5-coder-7b", "awq")]
    h_bid, _c = bid.block(1e6, 1e5)
    h_od, _c = ondemand.block(1e6, 1e5)
    work = h_od - ondemand.cold_s / 3600
    assert h_bid == pytest.approx(work * (1 + p.interruption_overhead["bid"]) + bid.cold_s / 3600)


def test_monthly_billing_and_setup_fee(options, catalog):
    opt = options[("hetzner:GEX44:on_demand:FSN1", "qwen2.5-coder-7b", "awq")]
    eur = catalog.currencies["EUR"].usd_per_unit
    hours, cost = opt.block(1000, 100)
    assert hours < 1
    assert cost == pytest.approx(730 * 0.252 * eur + 79 * eur)


def test_weaker_models_need_more_tokens(options):
    strong = options[("vast:RTX 4090:on_demand", "qwen2.5-coder-7b", "fp16")]
    weak = options[("vast:RTX 4090:on_demand", "llama-3.1-8b", "awq")]
    assert weak.rework > strong.rework >= 1.0
