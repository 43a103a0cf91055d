"""The deterministic estimator: formula table and result shape."""

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate

from _planner_helpers import blueprint


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _one(description="The core feature.", complexity="medium", quality="standard"):
    data = blueprint(quality=quality)
    data["features"] = [{"name": "core", "description": description, "priority": "must"}]
    if complexity:
        data["features"][0]["complexity"] = complexity
    return data


@pytest.mark.parametrize("complexity, quality, role, out, inp", [
    # code tokens = loc x 12; output = code x ratio x quality factor; input = output x ratio
    ("low", "standard", "coder", 200 * 12 * 3.0, 200 * 12 * 3.0 * 30),
    ("medium", "standard", "architect", 800 * 12 * 0.25, 800 * 12 * 0.25 * 4),
    ("high", "standard", "debugger", 2500 * 12 * 0.8, 2500 * 12 * 0.8 * 40),
    ("medium", "high", "reviewer", 800 * 12 * 0.3 * 1.5, 800 * 12 * 0.3 * 1.5 * 25),
    ("medium", "draft", "reviewer", 800 * 12 * 0.3 * 0.5, 800 * 12 * 0.3 * 0.5 * 25),
])
def test_formula(catalog, complexity, quality, role, out, inp):
    result = estimate(_one(complexity=complexity, quality=quality), catalog)
    task = [t for t in result["tasks"] if t["role"] == role and t["feature"] == "core"][0]
    assert task["output_tokens"] == round(out)
    assert task["input_tokens"] == round(inp)
    assert task["complexity"] == complexity


@pytest.mark.parametrize("words, expected", [(3, "low"), (20, "medium"), (60, "high")])
def test_complexity_from_description_length(catalog, words, expected):
    result = estimate(_one(description=" ".join(["word"] * words), complexity=None), catalog)
    assert result["tasks"][1]["complexity"] == expected


def test_project_task_and_shape(catalog):
    bp = validate_blueprint(blueprint())
    result = estimate(bp, catalog)
    assert result["source"] == "deterministic" and result["model"] is None
    assert result["reasoning"]
    project = result["tasks"][0]
    assert project["feature"] == "(project)" and project["role"] == "architect"
    assert project["output_tokens"] == 3000 + 600 * 3
    assert len(set((t["role"], t["feature"]) for t in result["tasks"])) == 1 + 4 * 3
    assert len(result["tasks"]) == 1 + 4 * 3 + 1      # the high-complexity coder task in 2 parts
    for task in result["tasks"]:
        assert set(task) == {"role", "feature", "title", "complexity", "input_tokens",
                             "output_tokens"}
        assert isinstance(task["input_tokens"], int) and task["input_tokens"] >= 0
    shares = [d["share"] for d in result["cost_drivers"]]
    assert shares == sorted(shares, reverse=True)
    assert 0 < sum(shares) <= 1
    assert result["cost_drivers"][0]["feature"] == "extra"      # the high-complexity one
    assert all(set(d) == {"feature", "share", "why"} for d in result["cost_drivers"])


def test_deterministic(catalog):
    assert estimate(blueprint(), catalog) == estimate(blueprint(), catalog)


def test_loads_the_bundled_catalog_by_default():
    assert estimate(blueprint())["source"] == "deterministic"


def test_big_tasks_are_split_within_the_intent_bounds(catalog):
    params = catalog.estimator["default"]
    result = estimate(_one(complexity="high", quality="high"), catalog)
    coder = [t for t in result["tasks"] if t["role"] == "coder"]
    whole_out = round(2500 * 12 * 3.0 * 1.1)
    whole_in = round(whole_out * 30)
    assert len(coder) == 2 and coder[0]["title"].endswith("(part 1/2)")
    assert sum(t["output_tokens"] for t in coder) == whole_out
    assert sum(t["input_tokens"] for t in coder) == whole_in
    for task in result["tasks"]:
        assert task["input_tokens"] <= params.max_task_input_tokens
        assert task["output_tokens"] <= params.max_task_output_tokens
