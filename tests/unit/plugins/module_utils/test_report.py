"""The human report: Markdown page and SVG chart."""

import os
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import load_blueprint
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import load_catalog
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
from ansible_collections.llmops.codestack.plugins.module_utils._planner import build_plan
from ansible_collections.llmops.codestack.plugins.module_utils._report import (
    render_markdown,
    render_svg,
)

from _planner_helpers import BLUEPRINTS


@pytest.fixture(scope="module")
def plans():
    catalog = load_catalog()
    out = {}
    for name in ("small-cli.yml", "large-platform.yml"):
        bp = load_blueprint(os.path.join(BLUEPRINTS, name))
        out[name] = build_plan(bp, estimate(bp, catalog), catalog)
    return out


def test_markdown_states_source_verdict_and_tradeoffs(plans):
    text = render_markdown(plans["large-platform.yml"])
    assert "source: **deterministic**" in text
    assert "does NOT fit" in text
    assert "![cost vs time of the alternatives](cost-vs-time.svg)" in text
    for tradeoff in plans["large-platform.yml"]["tradeoffs"]:
        assert tradeoff["summary"] in text
    assert "| coder |" in text
    small = render_markdown(plans["small-cli.yml"])
    assert "the blueprint fits" in small and "None needed" in small


def test_llm_source_names_the_model(plans):
    plan = dict(plans["small-cli.yml"])
    plan["intent"] = dict(plan["intent"], source="llm", model="openai/intent")
    assert "the intent LLM `openai/intent`" in render_markdown(plan)


def test_svg_is_valid_and_plots_every_alternative(plans):
    for plan in plans.values():
        root = ET.fromstring(render_svg(plan))
        circles = root.findall("{http://www.w3.org/2000/svg}circle")
        assert len(circles) == len(plan["pareto"]) + 5    # points + legend
        titles = [c.find("{http://www.w3.org/2000/svg}title").text for c in circles
                  if c.find("{http://www.w3.org/2000/svg}title") is not None]
        assert any(t.startswith("chosen") for t in titles)
