# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Catalog sections for per-token APIs and local Ollama (docs/catalog.md).

``api_providers`` (OpenRouter, DeepSeek, Mistral, ..., and Ollama with ``data_policy: local``),
``api_models`` (priced per million input/output tokens) and ``ollama_models`` (tags on the
owner's hardware with their tok/s). ``_catalog.py`` registers the sections and calls
``check_api`` from ``Catalog.check``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

from typing import List, Literal, Optional

from ansible_collections.llmops.codestack.plugins.module_utils._pydantic import (  # noqa: F401
    HAS_PYDANTIC,
    BaseModel,
    ConfigDict,
    Field,
)

API_SECTIONS = ("api_providers", "api_models", "ollama_models", "budget_tiers")
DATA_POLICIES = ("third_party", "local")

if HAS_PYDANTIC:
    class _ApiEntry(BaseModel):
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
        id: str = Field(min_length=1)
        source: str = Field(min_length=1)
        as_of: datetime.date

    class ApiScore(BaseModel):
        model_config = ConfigDict(extra="forbid")
        value: float = Field(ge=0, le=100)
        benchmark: str = Field(min_length=1)
        source: str = Field(min_length=1)
        as_of: datetime.date

    class ApiProvider(_ApiEntry):
        """A per-token API (``third_party``: prompts leave the owner's machines) or a local
        server speaking an API (``local``: Ollama)."""
        name: str = Field(min_length=1)
        api_base: str = Field(pattern=r"^https?://")
        litellm_prefix: str = Field(pattern=r"^[a-z_]+$")
        key_env: Optional[str] = Field(default=None, pattern=r"^[A-Z][A-Z0-9_]*$")
        data_policy: Literal["third_party", "local"]
        country: Optional[str] = Field(default=None, pattern=r"^[A-Z]{2}$")

    class ApiModel(_ApiEntry):
        provider: str = Field(min_length=1)
        model: str = Field(min_length=1)
        litellm_model: str = Field(min_length=1)
        name: str = Field(min_length=1)
        input_usd_per_mtok: float = Field(ge=0)
        output_usd_per_mtok: float = Field(ge=0)
        context: int = Field(gt=0)
        output_tok_s: float = Field(gt=0)
        ttft_s: float = Field(gt=0)
        score: ApiScore
        unverified: List[str] = Field(default_factory=list)

        def cost_usd(self, tokens_in, tokens_out):
            """What the provider bills for this many tokens (full input rate, no cache discount)."""
            return (tokens_in * self.input_usd_per_mtok
                    + tokens_out * self.output_usd_per_mtok) / 1e6

    class OllamaModel(_ApiEntry):
        """An Ollama tag (``id``, e.g. ``qwen2.5-coder:7b``) of a catalog model, with its tok/s
        on the owner's host (``throughput``: measured there, or modelled)."""
        model: str = Field(min_length=1)
        quantization: str = Field(min_length=1)
        weight_gb: float = Field(gt=0)
        context: int = Field(gt=0)
        host: str = Field(min_length=1)
        throughput: Literal["measured", "modelled"]
        decode_tok_s: float = Field(gt=0)
        prefill_tok_s: float = Field(gt=0)

    class BudgetTier(_ApiEntry):
        """A role's budget tier (economy ... premium): a quality floor for its options and a
        factor on its quality weight in the balanced objective."""
        min_quality: float = Field(ge=0, le=100)
        quality_weight: float = Field(gt=0)

    API_MODELS = {"api_providers": ApiProvider, "api_models": ApiModel,
                  "ollama_models": OllamaModel, "budget_tiers": BudgetTier}
else:  # pragma: no cover
    API_MODELS = {}


def check_api(catalog, need):
    """Cross-references of the API sections; returns the problems (one line each).
    ``need(section, key, what)`` is Catalog.check's reference checker."""
    problems = []
    providers = catalog.sections["api_providers"]
    for provider in providers.values():
        if provider.data_policy == "third_party" and not provider.key_env:
            problems.append("catalog: api_providers[id=%s].key_env: missing; fix: name the "
                            "environment variable holding the API key" % provider.id)
    for model in catalog.sections["api_models"].values():
        what = "api_models[id=%s]" % model.id
        if model.provider not in providers:
            need("api_providers", model.provider, what)
            continue
        provider = providers[model.provider]
        if provider.data_policy != "third_party":
            problems.append("catalog: %s.provider: '%s' has data_policy %s; fix: per-token "
                            "models belong to a third_party provider (local models go in "
                            "ollama_models)" % (what, provider.id, provider.data_policy))
        prefix = provider.litellm_prefix + "/"
        if not model.litellm_model.startswith(prefix):
            problems.append("catalog: %s.litellm_model: '%s' does not start with the provider's "
                            "litellm_prefix '%s'; fix: use '%s%s'"
                            % (what, model.litellm_model, prefix, prefix, model.model))
        fields = set(type(model).model_fields) - {"id", "source", "as_of", "unverified"}
        for name in model.unverified:
            if name not in fields:
                problems.append("catalog: %s.unverified: '%s' is not a field of the entry; "
                                "fix: use some of %s" % (what, name, ", ".join(sorted(fields))))
    if catalog.sections["ollama_models"] and "ollama" not in providers:
        need("api_providers", "ollama", "ollama_models")
    for tag in catalog.sections["ollama_models"].values():
        what = "ollama_models[id=%s]" % tag.id
        need("models", tag.model, what)
        need("quantizations", tag.quantization, what)
        quant = catalog.sections["quantizations"].get(tag.quantization)
        if quant is not None and quant.engine != "llamacpp":
            problems.append("catalog: %s.quantization: '%s' is a %s format; fix: Ollama serves "
                            "GGUF (llama.cpp) quantizations such as q4_k_m"
                            % (what, tag.quantization, quant.engine))
    return problems
