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


SVG = "{http://www.w3.org/2000/svg}"


def test_svg_is_valid_and_plots_every_alternative(plans):
    for plan in plans.values():
        root = ET.fromstring(render_svg(plan))
        circles = root.findall(SVG + "circle")
        assert len(circles) == len(plan["pareto"]) + 5    # points + legend
        titles = [c.find(SVG + "title").text for c in circles
                  if c.find(SVG + "title") is not None]
        assert any(t.startswith("chosen") for t in titles)
        lines = dict((line.get("class"), line) for line in root.findall(SVG + "line")
                     if line.get("class"))
        assert {"budget", "deadline"} <= set(lines)
        labels = " ".join(t.text for t in root.findall(SVG + "text")
                          if t.get("class") == "label")
        for kind in ("chosen", "cheapest", "fastest", "best quality"):
            assert kind in labels


def test_svg_draws_the_front_as_a_line(plans):
    plan = plans["large-platform.yml"]
    front = [p for p in plan["pareto"] if p["pareto_optimal"]]
    root = ET.fromstring(render_svg(plan))
    lines = [p for p in root.findall(SVG + "polyline") if p.get("class") == "pareto-front"]
    assert (len(lines) == 1) == (len(front) > 1)


def test_svg_stays_readable_when_everything_is_free(plans):
    plan = plans["small-cli.yml"]
    assert all(p["cost_usd"] == 0 for p in plan["pareto"])
    root = ET.fromstring(render_svg(plan))
    texts = [t.text for t in root.findall(SVG + "text")]
    # the cost axis (labels anchored at their end) reads from 0 up, each tick another number
    ticks = [t.text for t in root.findall(SVG + "text") if t.get("text-anchor") == "end"]
    assert len(ticks) >= 3 and len(set(ticks)) == len(ticks), ticks
    assert any("costs nothing" in (t or "") for t in texts)


def test_tick_labels_keep_their_decimals():
    from ansible_collections.llmops.codestack.plugins.module_utils._report import _fmt, _ticks
    ticks = _ticks(0.00105)
    labels = [_fmt(t, ticks[1] - ticks[0]) for t in ticks]
    assert len(set(labels)) == len(labels), labels
