"""Catalog: the bundled files, validation errors and user overrides."""

import datetime

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)

REQUIRED_MODELS = ["codestral-22b", "codellama-34b", "qwen2.5-coder-7b", "qwen2.5-coder-14b",
                   "qwen2.5-coder-32b", "deepseek-coder-v2-lite", "starcoder2-15b",
                   "llama-3.1-8b", "smollm2-135m"]


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def test_bundled_catalog_has_what_the_planner_needs(catalog):
    assert set(REQUIRED_MODELS) <= set(catalog.models)
    for key in REQUIRED_MODELS[:-1]:
        assert {"fp16", "fp8", "awq", "gptq"} <= set(catalog.models[key].quantizations), key
        assert catalog.models[key].score.source.startswith("http")
    assert "q4_1" in catalog.models["smollm2-135m"].quantizations
    providers = set(o.provider for o in catalog.offers.values())
    assert {"local", "runpod", "runpod_serverless", "vast", "hetzner", "exoscale"} <= providers
    pricings = set((o.provider, o.pricing) for o in catalog.offers.values())
    assert {("runpod", "on_demand"), ("runpod", "spot"), ("runpod_serverless", "serverless"),
            ("local", "owned")} <= pricings
    local = catalog.offers["local:cpu:owned"]
    assert local.price_per_hour == 0
    meas = catalog.measurements["local:cpu:owned/smollm2-135m/q4_1"]
    assert "measured here" in meas.source


def test_every_entry_is_dated_and_sourced(catalog):
    today = datetime.datetime.now(datetime.timezone.utc).date()
    for name, section in catalog.sections.items():
        for entry in section.values():
            assert entry.source and entry.as_of, entry.id
            assert entry.as_of <= today, "%s is dated in the future (%s)" % (entry.id, entry.as_of)
            # (catalog/scaling.yml, kept by the scaling work, does not list its fields yet)
            if "unverified" in entry.source.lower() and name != "scaling" and hasattr(entry, "unverified"):
                # a source that admits doubt must say which figures are in doubt
                assert entry.unverified, "%s: source says unverified, 'unverified' is empty" % entry.id
    summary = catalog.summary()
    assert summary["as_of"] == "2026-12-02"
    assert all(p.startswith("bundled:catalog/") for p in summary["paths"])


def _offer(**overrides):
    offer = {"id": "vast:RTX 4090:on_demand", "provider": "vast", "pricing": "on_demand",
             "gpu": "rtx4090", "provider_gpu_id": "RTX 4090", "count": 1,
             "price_per_hour": 0.01, "currency": "USD", "region": "ALL",
             "source": "test", "as_of": "2026-11-23"}
    offer.update(overrides)
    return offer


def test_user_file_overrides_by_id_and_extends(tmp_path, catalog):
    import yaml
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump({"offers": [
        _offer(as_of="2026-12-02"),
        _offer(id="vast:RTX 4090:on_demand:mine", price_per_hour=0.02)]}))
    mine = load_catalog([str(path)])
    assert mine.offers["vast:RTX 4090:on_demand"].price_per_hour == 0.01
    assert catalog.offers["vast:RTX 4090:on_demand"].price_per_hour != 0.01
    assert "vast:RTX 4090:on_demand:mine" in mine.offers
    assert len(mine.offers) == len(catalog.offers) + 1
    assert mine.summary()["paths"][-1] == str(path)
    assert mine.summary()["as_of"] == "2026-12-02"


def test_user_folder_is_read_in_order(tmp_path):
    import yaml
    (tmp_path / "a.yml").write_text(yaml.safe_dump({"offers": [_offer(price_per_hour=0.5)]}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"offers": [_offer(price_per_hour=0.7)]}))
    assert load_catalog([str(tmp_path)]).offers["vast:RTX 4090:on_demand"].price_per_hour == 0.7


@pytest.mark.parametrize("data, expected", [
    ({"offers": [_offer(price_per_hour=-1)]},
     "offers[id=vast:RTX 4090:on_demand].price_per_hour: Input should be greater than or equal"),
    ({"offers": [_offer(gpu="tpu-v9")]}, "refers to unknown gpus 'tpu-v9'"),
    ({"offers": [_offer(provider="aws")]}, "offers[id=vast:RTX 4090:on_demand].provider"),
    ({"offers": [_offer(currency="GBP")]}, "unknown currencies 'GBP'"),
    ({"offers": [dict((k, v) for k, v in _offer().items() if k != "source")]},
     "source: Field required (fix: add it)"),
    ({"gadgets": []}, "unknown section 'gadgets'"),
    ({"offers": {"id": "x"}}, "section 'offers' must be a list"),
    ([1, 2], "must be a mapping of sections"),
    ({"models": [{
        "id": "m", "name": "m", "hf_repo": "x/m", "params_b": 1, "licence": "mit",
        "context": 4096, "kv_kb_per_token": 10, "quantizations": {"int3": {"weight_gb": 1}},
        "score": {"value": 50, "benchmark": "HumanEval", "source": "s", "as_of": "2026-01-01"},
        "source": "s", "as_of": "2026-01-01"}]},
     "models[id=m] refers to unknown quantizations 'int3'"),
    ({"gpus": [{"id": "g", "name": "g", "vram_gb": "lots", "bandwidth_gbs": 1,
                "fp16_tflops": 1, "source": "s", "as_of": "2026-01-01"}]},
     "gpus[id=g].vram_gb"),
])
def test_bad_user_catalog_is_one_clear_error(tmp_path, data, expected):
    import yaml
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as info:
        load_catalog([str(path)])
    message = str(info.value).replace("; fix: add it", " (fix: add it)")
    assert expected in message


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(CatalogError, match="cannot read catalog file .*missing.yml"):
        load_catalog([str(tmp_path / "missing.yml")])
    bad = tmp_path / "bad.yml"
    bad.write_text("offers: [\n")
    with pytest.raises(CatalogError, match="not valid YAML"):
        load_catalog([str(bad)])


def test_every_catalog_problem_is_reported_at_once(tmp_path):
    import yaml
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({
        "offers": [_offer(price_per_hour=-1), _offer(id="b", gpu="rtx409"),
                   dict(_offer(id="c"), min_biling_hours=1)],
        "gpu": []}))
    with pytest.raises(CatalogError) as info:
        load_catalog([str(path)])
    message = str(info.value)
    assert "offers[id=vast:RTX 4090:on_demand].price_per_hour" in message
    assert "offers[id=c].min_biling_hours" in message
    assert "did you mean 'min_billing_hours'?" in message
    assert "unknown section 'gpu'; fix: did you mean 'gpus'?" in message
    assert "(3 problems in all)" in message
    path.write_text(yaml.safe_dump({"offers": [_offer(id="b", gpu="rtx409")]}))
    with pytest.raises(CatalogError, match="unknown gpus 'rtx409'; fix: did you mean 'rtx4090'"):
        load_catalog([str(path)])


def test_non_utf8_catalog_names_the_file(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes("offers: []  # caf\xe9\n".encode("latin-1"))
    with pytest.raises(CatalogError) as info:
        load_catalog([str(path)])
    assert str(path) in str(info.value) and "not UTF-8" in str(info.value)


def test_measurements_are_matched_by_their_fields(tmp_path, catalog):
    import yaml
    offer = catalog.offers["runpod:NVIDIA GeForce RTX 4090:on_demand"]
    path = tmp_path / "meas.yml"
    path.write_text(yaml.safe_dump({"measurements": [
        {"id": "my run 7", "offer": offer.id, "model": "qwen2.5-coder-7b",
         "quantization": "awq", "decode_tok_s": 123.0, "source": "test",
         "as_of": "2026-12-01"},
        {"id": "gpu-wide", "gpu": "rtx4090", "model": "qwen2.5-coder-7b", "quantization": "awq",
         "decode_tok_s": 99.0, "source": "test", "as_of": "2026-12-01"}]}))
    mine = load_catalog([str(path)])
    assert mine.measurement_for(offer, "qwen2.5-coder-7b", "awq").decode_tok_s == 123.0
    other = catalog.offers["runpod:NVIDIA GeForce RTX 4090:spot"]
    assert mine.measurement_for(other, "qwen2.5-coder-7b", "awq").decode_tok_s == 99.0
    assert mine.measurement_for(offer, "qwen2.5-coder-7b", "fp16") is None


def test_unverified_names_fields_of_the_entry(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump({"offers": [_offer(unverified=["price_per_hr"])]}))
    with pytest.raises(CatalogError) as err:
        load_catalog([str(path)])
    assert "offers[id=" in str(err.value) and "unverified: 'price_per_hr'" in str(err.value)
    assert "did you mean 'price_per_hour'?" in str(err.value)


def test_hetzner_and_exoscale_figures_say_what_is_unconfirmed(catalog):
    for offer in catalog.offers.values():
        if offer.provider in ("hetzner", "exoscale"):
            assert "price_per_hour" in offer.unverified, offer.id
            assert "2026-12-01" in offer.source, "%s: the date it was last checked" % offer.id


def test_measured_here_figures_are_the_benchmark_result(catalog):
    """The CPU figures the planner prices the local model with are the medians of the result
    file the catalog names, produced by the command it names (benchmarks/cpu_throughput.py)."""
    import json
    import os
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import BUNDLED_DIR

    meas = catalog.measurements["local:cpu:owned/smollm2-135m/q4_1"]
    assert meas.command.startswith("python3 benchmarks/cpu_throughput.py")
    assert meas.result in meas.command
    with open(os.path.join(os.path.dirname(BUNDLED_DIR), meas.result)) as handle:
        result = json.load(handle)
    assert result["command"] == meas.command
    assert result["date"][:10] == meas.as_of.isoformat()
    assert round(result["median"]["decode_tok_s"], 1) == meas.decode_tok_s
    assert round(result["median"]["prefill_tok_s"], 1) == meas.prefill_tok_s
    load = "load average %.1f before and %.1f after" % (result["load_average_before"][0],
                                                        result["load_average_after"][0])
    assert load in meas.source
