# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The human report of a plan: a Markdown page and an SVG cost-vs-time chart (no plotting
library needed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math

try:
    from html import escape as _escape
except ImportError:  # pragma: no cover - Python 2
    from cgi import escape as _escape

CHART_FILE = "cost-vs-time.svg"
_COLOURS = {"chosen": "#d62728", "cheapest": "#2ca02c", "fastest": "#1f77b4",
            "best quality": "#9467bd", "front": "#7f7f7f"}
_SOURCES = {
    "deterministic": "the deterministic estimator (no intent LLM configured; formula in "
                     "docs/cost-model.md)",
    "file": "an intent file",
    "llm": "the intent LLM",
}


def _esc(text):
    return _escape(str(text), quote=True)


def _cell(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _ticks(high):
    """About five round tick values from 0 to >= high."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / 5.0
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    count = int(math.ceil(high / step - 1e-9))
    return [i * step for i in range(count + 1)]


def _fmt(value, step=1.0):
    """A tick label with as many decimals as the tick step needs (0.0002 stays 0.0002)."""
    if step >= 1 or value == 0:
        return "%.0f" % value if value >= 10 or float(value).is_integer() else \
            ("%.2f" % value).rstrip("0").rstrip(".")
    decimals = max(0, int(math.ceil(-math.log10(step) - 1e-9)))
    return ("%.*f" % (decimals + 1, value)).rstrip("0").rstrip(".")


def _axis(values, limit):
    """Axis maximum: the data and the limit line, unless the limit is far off the data
    (then it is drawn at the edge, marked off scale)."""
    high = max(values + [0.0])
    if high <= 0:
        high = limit if limit > 0 else 1.0
    on_scale = limit <= 4 * high
    ticks = _ticks(max(high, limit if on_scale else 0.0) * 1.05)
    return ticks, on_scale


def render_svg(plan, width=760, height=460):
    """Cost (USD) against time (hours): the named alternatives (labelled), the exact
    cost-time Pareto front (a step line), the budget and deadline lines."""
    points = plan.get("pareto", [])
    left, right, top, bottom = 80, 200, 40, 60
    plot_w, plot_h = width - left - right, height - top - bottom
    budget = plan["checks"]["budget"]
    budget_usd = budget["limit"] * (plan["totals"]["usd_per_eur"]
                                    if budget["currency"] == "EUR" else 1.0)
    deadline = plan["checks"]["deadline"]["limit_hours"]
    x_ticks, deadline_on = _axis([p["hours"] for p in points], deadline)
    y_ticks, budget_on = _axis([p["cost_usd"] for p in points], budget_usd)
    x_max, y_max = x_ticks[-1] or 1.0, y_ticks[-1] or 1.0
    x_step = x_ticks[1] - x_ticks[0] if len(x_ticks) > 1 else 1.0
    y_step = y_ticks[1] - y_ticks[0] if len(y_ticks) > 1 else 1.0

    def x(value):
        return left + plot_w * min(value, x_max) / x_max

    def y(value):
        return top + plot_h - plot_h * min(value, y_max) / y_max

    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">'
           % (width, height, width, height),
           '<title>%s: cost vs time of the alternatives</title>' % _esc(plan["stack_id"]),
           '<rect width="100%" height="100%" fill="white"/>',
           '<text x="%d" y="22" font-size="15" font-weight="bold">%s: cost vs time</text>'
           % (left, _esc(plan["stack_id"]))]
    for tick in x_ticks:
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e5e5e5"/>'
                   % (x(tick), top, x(tick), top + plot_h))
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>'
                   % (x(tick), top + plot_h + 18, _fmt(tick, x_step)))
    for tick in y_ticks:
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e5e5"/>'
                   % (left, y(tick), left + plot_w, y(tick)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%s</text>'
                   % (left - 8, y(tick) + 4, _fmt(tick, y_step)))
    out.append('<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>'
               % (left, top, plot_w, plot_h))
    out.append('<text x="%.1f" y="%d" text-anchor="middle">hours (wall time)</text>'
               % (left + plot_w / 2.0, height - 15))
    out.append('<text transform="translate(18,%.1f) rotate(-90)" text-anchor="middle">'
               'cost (USD)</text>' % (top + plot_h / 2.0))
    if all(p["cost_usd"] == 0 for p in points):
        out.append('<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">every '
                   'alternative costs nothing (owned hardware): they differ in time only'
                   '</text>' % (left + plot_w / 2.0, top + plot_h - 12))
    out.append('<line class="budget" x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#d62728" '
               'stroke-dasharray="6 4"/><text x="%d" y="%.1f" fill="#d62728">budget %s%s'
               '</text>' % (left, y(budget_usd), left + plot_w, y(budget_usd),
                            left + plot_w + 4, y(budget_usd) + 4, _fmt(budget_usd, 0.01),
                            "" if budget_on else " (off scale)"))
    out.append('<line class="deadline" x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#1f77b4" '
               'stroke-dasharray="6 4"/><text x="%.1f" y="%d" fill="#1f77b4" '
               'text-anchor="middle">deadline %s h%s</text>'
               % (x(deadline), top, x(deadline), top + plot_h, x(deadline), top - 6,
                  _fmt(deadline, 0.01), "" if deadline_on else " (off scale)"))
    front = sorted((p for p in points if p.get("pareto_optimal")),
                   key=lambda p: (p["hours"], p["cost_usd"]))
    if len(front) > 1:
        path = []
        for index, point in enumerate(front):
            if index:
                path.append("%.1f,%.1f" % (x(point["hours"]), y(front[index - 1]["cost_usd"])))
            path.append("%.1f,%.1f" % (x(point["hours"]), y(point["cost_usd"])))
        out.append('<polyline class="pareto-front" points="%s" fill="none" stroke="#7f7f7f" '
                   'stroke-width="1.5"/>' % " ".join(path))
    ordered = sorted(points, key=lambda p: p["kind"] != "front")   # named points on top
    for point in ordered:
        colour = _COLOURS.get(point["kind"], "#7f7f7f")
        radius = 7 if point["kind"] == "chosen" else 5
        out.append('<circle cx="%.1f" cy="%.1f" r="%d" fill="%s" fill-opacity="0.8" '
                   'stroke="black" stroke-width="%s"><title>%s: $%.4f, %.3f h, quality %.1f'
                   '%s</title></circle>'
                   % (x(point["hours"]), y(point["cost_usd"]), radius, colour,
                      "1.5" if point.get("pareto_optimal") else "0.5", _esc(point["label"]),
                      point["cost_usd"], point["hours"], point["quality_score"],
                      ", Pareto-optimal" if point.get("pareto_optimal") else ""))
    labelled = {}
    for point in points:
        if point["kind"] == "front":
            continue
        spot = (round(x(point["hours"])), round(y(point["cost_usd"])))
        labelled.setdefault(spot, []).append(point["kind"])
    for (px, py), kinds in sorted(labelled.items()):
        out.append('<text class="label" x="%d" y="%d" font-size="11">%s</text>'
                   % (px + 9, py - 7, _esc(", ".join(kinds))))
    legend_y = top + 10
    for label in ("chosen", "cheapest", "fastest", "best quality", "front"):
        out.append('<circle cx="%d" cy="%d" r="5" fill="%s"/><text x="%d" y="%d">%s</text>'
                   % (width - right + 20, legend_y, _COLOURS[label], width - right + 32,
                      legend_y + 4, "Pareto front (cost, time)" if label == "front"
                      else label))
        legend_y += 20
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _money(plan, usd):
    if plan["checks"]["budget"]["currency"] == "EUR":
        return "EUR %.2f" % (usd / plan["totals"]["usd_per_eur"])
    return "USD %.2f" % usd


def render_markdown(plan, chart_file=CHART_FILE):
    """The report a person reads: verdict, roles, deployments, alternatives, trade-offs."""
    checks = plan["checks"]
    intent = plan["intent"]
    source = _SOURCES.get(intent["source"], intent["source"])
    if intent["source"] == "llm":
        source += " `%s`" % intent.get("model")
    lines = [
        "# Plan for %s" % plan["blueprint"]["project"]["name"],
        "",
        "%s" % plan["blueprint"]["project"]["description"],
        "",
        "- Generated: %s; stack id `%s`" % (plan["generated_at"], plan["stack_id"]),
        "- Work estimate (intent) source: **%s** — %s" % (intent["source"], source),
        "- Catalog as of %s (%s)" % (plan["catalog"]["as_of"],
                                     ", ".join(plan["catalog"]["paths"])),
        "",
        "## Verdict: %s" % ("the blueprint fits" if plan["fits"]
                            else "the blueprint does NOT fit (see trade-offs)"),
        "",
        "| check | limit | estimate | ok |",
        "|---|---|---|---|",
        "| budget | %s %s | %s %.2f | %s |" % (
            checks["budget"]["currency"], checks["budget"]["limit"], checks["budget"]["currency"],
            checks["budget"]["estimate"], "yes" if checks["budget"]["ok"] else "**no**"),
        "| deadline | %s h | %.2f h | %s |" % (
            checks["deadline"]["limit_hours"], checks["deadline"]["estimate_hours"],
            "yes" if checks["deadline"]["ok"] else "**no**"),
        "| quality | %s (score >= %g) | %s (lowest role score %.1f) | %s |" % (
            checks["quality"]["required"], checks["quality"]["required_score"],
            checks["quality"]["achieved"] or "below draft",
            checks["quality"]["achieved_score"],
            "yes" if checks["quality"]["ok"] else "**no**"),
        "",
        "Totals: %.2f h wall time, %.2f GPU hours, USD %.2f (EUR %.2f). If nothing scaled to "
        "zero, renting every deployment until the deadline would cost USD %.2f."
        % (plan["totals"]["hours"], plan["totals"]["gpu_hours"], plan["totals"]["cost_usd"],
           plan["totals"]["cost_eur"], plan["totals"]["always_on_cost_usd"]),
        "",
    ]
    control = plan.get("control_plane")   # plans made before it have none
    if control:
        lines += ["Control server (gateway, guard, IDE): %s %s%s, %s %.6f an hour billed %s, "
                  "%.0f h from creation until teardown at the deadline: %s (in the totals; prices "
                  "as of %s%s)." % (
                      control["provider"], control["server_type"],
                      " at %s" % control["location"] if control["location"] else "",
                      control["currency"], control["price_per_hour"],
                      control["billing"].replace("_", " "), control["billed_hours"],
                      _money(plan, control["cost_usd"]), control["as_of"],
                      ", unverified: refresh the catalog" if control["unverified"] else ""), ""]
    classes = plan.get("provider_classes") or {}
    if classes.get("why"):   # plans made before per-token APIs have none
        lines += ["Provider classes: %s" % classes["why"], ""]
    sensitive = sorted(r for r, doc in (plan.get("routing") or {}).items() if doc.get("sensitive"))
    if sensitive:
        lines += ["Sensitive roles (local or self-hosted only, fallbacks included): %s."
                  % ", ".join(sensitive), ""]
    lines += [
        "## Roles",
        "",
        "| role | deployment | model | input tokens | output tokens | hours | cost | quality |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_name = dict((d["name"], d) for d in plan["deployments"])
    for role, doc in plan["roles"].items():
        dep = by_name[doc["deployment"]]
        lines.append("| %s | `%s` | %s %s | %d | %d | %.2f | %s | %.1f |" % (
            role, doc["deployment"], dep["model"]["name"], dep["model"]["quantization"],
            doc["tokens"]["input"], doc["tokens"]["output"], doc["hours"],
            _money(plan, doc["cost_usd"]), doc["quality_score"]))
    lines += [
        "",
        "## Deployments",
        "",
        "| deployment | provider (pricing) | GPU | USD/h | engine | tok/s (aggregate) | "
        "prefill tok/s | cold start | hours | cost | fallbacks |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dep in plan["deployments"]:
        lines.append("| `%s` | %s (%s) | %dx %s | %.2f | %s | %.0f (%s) | %.0f | %d s | %.2f | %s "
                     "| %s |" % (
                         dep["name"], dep["provider"], dep["pricing"], dep["gpu"]["count"],
                         dep["gpu"]["name"], dep["price_per_hour_usd"], dep["engine"],
                         dep["throughput_tok_s"], dep["throughput_source"], dep["prefill_tok_s"],
                         dep["cold_start_s"], dep["hours"], _money(plan, dep["cost_usd"]),
                         _cell("; ".join("%s %s on %s" % (a["model"]["key"],
                                                          a["model"]["quantization"],
                                                          a["offer_id"])
                                         for a in dep["alternatives"]) or "none")))
    lines += [
        "",
        "## Alternatives",
        "",
        "![cost vs time of the alternatives](%s)" % chart_file,
        "",
        "| alternative | cost | hours | quality (role-weighted) | Pareto-optimal | fits budget "
        "| meets deadline | meets quality | deployments |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for point in plan["pareto"]:
        lines.append("| %s | %s | %.2f | %.1f | %s | %s | %s | %s | %s |" % (
            point["label"], _money(plan, point["cost_usd"]), point["hours"],
            point["quality_score"], "yes" if point["pareto_optimal"] else "no",
            "yes" if point["fits_budget"] else "no", "yes" if point["meets_deadline"] else "no",
            "yes" if point["meets_quality"] else "no", _cell("; ".join(point["deployments"]))))
    lines += ["", "## Trade-offs", ""]
    if plan["tradeoffs"]:
        lines += ["- %s" % t["summary"] for t in plan["tradeoffs"]]
    else:
        lines.append("None needed: budget, deadline and quality hold.")
    lines += [
        "",
        "## Work estimate",
        "",
        "%s" % intent.get("reasoning", ""),
        "",
        "Tokens: %d input, %d output over %d tasks." % (
            intent["tokens"]["input"], intent["tokens"]["output"], len(intent["tasks"])),
        "",
        "| feature | share of the work | why |",
        "|---|---|---|",
    ]
    for driver in intent.get("cost_drivers", []):
        lines.append("| %s | %.0f %% | %s |" % (
            _cell(driver["feature"]), 100 * driver["share"], _cell(driver.get("why", ""))))
    if intent.get("notes"):
        lines += ["", "What validation of the estimate changed (docs/intent.md):", ""]
        lines += ["- %s" % note for note in intent["notes"]]
    return "\n".join(lines) + "\n"
