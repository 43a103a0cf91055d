"""Every (model, quantization) of the bundled catalog names the weights that are served.

A plan that picks a quantization must point vLLM (or llama.cpp) at a repository holding exactly
those weights: vLLM refuses ``--quantization awq`` on an fp16 checkpoint at load time.
"""

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import validate_blueprint
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    _option_doc, enumerate_options)

from _planner_helpers import blueprint

CATALOG = load_catalog()
ENTRIES = [(m, q) for m in CATALOG.models.values() for q in m.quantizations]
# What the repository name of a pre-quantized checkpoint says about its format.
MARKERS = {"awq": "awq", "gptq": "gptq", "fp8": "fp8"}


@pytest.mark.parametrize("model,quant", ENTRIES, ids=["%s/%s" % (m.id, q) for m, q in ENTRIES])
def test_entry_is_consistent(model, quant):
    entry = model.quantizations[quant]
    repo, revision, gated, licence = model.weights(quant)
    engine = CATALOG.quantizations[quant].engine
    if repo is None:
        # not offered: nothing else may pretend it is
        assert entry.revision is None and entry.gated is None and not entry.quantize_at_load
        assert quant != "fp16"
        return
    assert revision and entry.gated is not None and licence
    if entry.quantize_at_load:
        # vLLM quantizes the fp16 checkpoint while loading: only fp8 can, from the fp16 repo
        assert quant == "fp8" and repo == model.weights("fp16")[0]
        assert CATALOG.quantizations[quant].vllm_quantization == "fp8"
    elif quant == "fp16":
        assert repo == model.hf_repo
    elif engine == "llamacpp":
        assert repo.lower().endswith(".gguf"), "llama.cpp serves GGUF files"
    else:
        assert MARKERS[quant] in repo.lower(), "%s is not a %s checkpoint" % (repo, quant)
        assert repo != model.hf_repo
    if repo.startswith(("meta-llama/", "mistralai/")):
        assert gated, "%s repositories are gated on Hugging Face" % repo.split("/")[0]


def test_quantizations_without_weights_are_never_planned():
    missing = [(m.id, q) for m, q in ENTRIES if m.weights(q)[0] is None]
    assert ("codestral-22b", "awq") in missing and ("starcoder2-15b", "gptq") in missing
    bp = validate_blueprint(blueprint(providers=["local", "runpod", "runpod_serverless", "vast"]))
    found, _rejected = enumerate_options(CATALOG, bp.constraints)
    planned = set((o.model.id, o.quant_id) for o in found)
    assert ("codestral-22b", "fp16") in planned and ("qwen2.5-coder-32b", "awq") in planned
    assert not planned & set(missing)
    for opt in found:
        doc = _option_doc(opt)["model"]
        # the plan carries the weights' own repository, revision and gate, never a guess
        assert (doc["hf_repo"], doc["revision"], doc["gated"], doc["licence"]) == opt.model.weights(opt.quant_id)
