"""Catalog sections for per-token APIs and Ollama: the bundled files and their validation."""

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _api_model(**overrides):
    entry = {"id": "mistral:test", "provider": "mistral", "model": "test",
             "litellm_model": "mistral/test", "name": "Test", "input_usd_per_mtok": 1.0,
             "output_usd_per_mtok": 2.0, "context": 32768, "output_tok_s": 50, "ttft_s": 0.5,
             "score": {"value": 80, "benchmark": "HumanEval pass@1", "source": "s",
                       "as_of": "2026-01-01"},
             "source": "s", "as_of": "2026-12-01"}
    entry.update(overrides)
    return entry


def _tag(**overrides):
    entry = {"id": "qwen2.5-coder:7b", "model": "qwen2.5-coder-7b", "quantization": "q4_k_m",
             "weight_gb": 4.7, "context": 32768, "host": "my laptop", "throughput": "measured",
             "decode_tok_s": 30, "prefill_tok_s": 300, "source": "ollama run --verbose",
             "as_of": "2026-12-01"}
    entry.update(overrides)
    return entry


def test_bundled_api_catalog(catalog):
    providers = catalog.api_providers
    assert {"openrouter", "deepseek", "mistral", "ollama"} <= set(providers)
    for pid in ("openrouter", "deepseek", "mistral"):
        assert providers[pid].data_policy == "third_party"
        assert providers[pid].key_env.endswith("_API_KEY")
        assert providers[pid].api_base.startswith("https://")
    assert providers["ollama"].data_policy == "local"
    assert providers["ollama"].litellm_prefix in ("ollama", "ollama_chat")
    by_provider = {}
    for model in catalog.api_models.values():
        by_provider.setdefault(model.provider, []).append(model)
        assert model.litellm_model.startswith(providers[model.provider].litellm_prefix + "/")
        assert model.output_usd_per_mtok >= model.input_usd_per_mtok > 0, model.id
        assert model.score.source.startswith("http"), model.id
        # a stand-in score is always flagged
        if "stand-in" in model.score.benchmark:
            assert "score" in model.unverified, model.id
    assert {"openrouter", "deepseek", "mistral"} <= set(by_provider)
    for tag in catalog.ollama_models.values():
        assert tag.model in catalog.models and tag.quantization in catalog.quantizations
        assert tag.throughput in ("measured", "modelled")


def test_api_price_is_tokens_times_rate(catalog):
    codestral = catalog.api_models["mistral:codestral-latest"]
    # 2 M input at $0.30 + 0.5 M output at $0.90
    assert codestral.cost_usd(2000000, 500000) == pytest.approx(0.6 + 0.45)


def test_modelled_ollama_throughput_follows_the_documented_roofline(catalog):
    params = catalog.cost_model["default"]
    rtx = catalog.gpus["rtx4090"]
    for tag in catalog.ollama_models.values():
        if tag.throughput != "modelled":
            continue
        model = catalog.models[tag.model]
        assert tag.decode_tok_s == pytest.approx(
            params.decode_efficiency * rtx.bandwidth_gbs / tag.weight_gb, rel=0.01), tag.id
        assert tag.prefill_tok_s == pytest.approx(
            params.prefill_mfu * rtx.fp16_tflops * 1e3 / (2 * model.params_b), rel=0.01), tag.id


def test_user_file_replaces_an_ollama_tag_with_a_measurement(tmp_path):
    path = tmp_path / "mine.yml"
    path.write_text(yaml.safe_dump({"ollama_models": [_tag()]}))
    mine = load_catalog([str(path)])
    assert mine.ollama_models["qwen2.5-coder:7b"].throughput == "measured"
    assert mine.ollama_models["qwen2.5-coder:7b"].decode_tok_s == 30


@pytest.mark.parametrize("data, expected", [
    ({"api_models": [_api_model(input_usd_per_mtok=-1)]},
     "api_models[id=mistral:test].input_usd_per_mtok: Input should be greater than or equal"),
    ({"api_models": [_api_model(provider="mistrall")]},
     "api_models[id=mistral:test] refers to unknown api_providers 'mistrall'; fix: did you "
     "mean 'mistral'?"),
    ({"api_models": [_api_model(litellm_model="openai/test")]},
     "api_models[id=mistral:test].litellm_model: 'openai/test' does not start with the "
     "provider's litellm_prefix 'mistral/'; fix: use 'mistral/test'"),
    ({"api_models": [_api_model(unverified=["price"])]},
     "api_models[id=mistral:test].unverified: 'price' is not a field of the entry"),
    ({"api_models": [_api_model(provider="ollama", litellm_model="ollama_chat/test")]},
     "api_models[id=mistral:test].provider: 'ollama' has data_policy local"),
    ({"api_models": [_api_model(contxt=1)]},
     "api_models[id=mistral:test].contxt: Extra inputs are not permitted"),
    ({"api_providers": [{"id": "x", "name": "X", "api_base": "ftp://x", "litellm_prefix": "x",
                         "key_env": "X_KEY", "data_policy": "third_party", "source": "s",
                         "as_of": "2026-12-01"}]},
     "api_providers[id=x].api_base: String should match pattern"),
    ({"api_providers": [{"id": "x", "name": "X", "api_base": "https://x", "litellm_prefix": "x",
                         "data_policy": "shared", "source": "s", "as_of": "2026-12-01"}]},
     "api_providers[id=x].data_policy: Input should be 'third_party' or 'local'"),
    ({"ollama_models": [_tag(model="qwen-coder-7b")]},
     "ollama_models[id=qwen2.5-coder:7b] refers to unknown models 'qwen-coder-7b'"),
    ({"ollama_models": [_tag(quantization="awq")]},
     "ollama_models[id=qwen2.5-coder:7b].quantization: 'awq' is a vllm format"),
    ({"ollama_models": [_tag(throughput="guessed")]},
     "ollama_models[id=qwen2.5-coder:7b].throughput: Input should be 'measured' or 'modelled'"),
])
def test_bad_api_entries_name_the_field(tmp_path, data, expected):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(CatalogError) as info:
        load_catalog([str(path)])
    assert expected in str(info.value)


def test_a_third_party_provider_needs_a_key_env(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text(yaml.safe_dump({"api_providers": [{
        "id": "mistral", "name": "M", "api_base": "https://x", "litellm_prefix": "mistral",
        "data_policy": "third_party", "source": "s", "as_of": "2026-12-01"}]}))
    with pytest.raises(CatalogError, match=r"api_providers\[id=mistral\].key_env: missing"):
        load_catalog([str(path)])
