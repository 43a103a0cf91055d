# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The spend report: the gateway's spend log (one JSON line per request, written by the
litellm_gateway role's ``codestack_spend.py``) and plan.json turned into figures a person reads,
and the same traffic repriced on other routes.

Pure functions over plain data; the ``spend_report`` action plugin reads the files and writes
the report. Everything here raises ``SpendError``; nothing reads the network.

A *route* (a candidate for repricing) is a dict:

    {"name": "...", "provider": "runpod", "kind": "api" | "self_hosted" | "local",
     "model": "Qwen2.5-Coder-14B-Instruct awq", "quality_score": 88.2, "source": "...",
     # priced per token (a per-token API):
     "usd_per_m_input": 0.14, "usd_per_m_output": 0.28,
     # or priced per second of GPU time (a rented or owned machine):
     "price_per_hour_usd": 0.34, "decode_tok_s": 135.0, "prefill_tok_s": 3800.0,
     "billing_factor": 1.26}   # optional: billed hours per busy hour (cold starts, minimum billing)

Only ``kind: api`` routes are third-party: a sensitive role is never repriced on one.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math

SCHEMA_VERSION = 1
KINDS = ("api", "self_hosted", "local")


class SpendError(Exception):
    """The log or the plan cannot be read as the report needs them."""


# --- reading -------------------------------------------------------------------------------

def parse_log(text):
    """(records, skipped): the log's lines as dicts; lines that are not JSON objects of a known
    schema version (a torn last line, another tool's output) are counted, not fatal."""
    records, skipped = [], 0
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            row = json.loads(line)
        except ValueError:
            skipped += 1
            continue
        if not isinstance(row, dict) or row.get("v") != SCHEMA_VERSION:
            skipped += 1
            continue
        records.append(row)
    return records, skipped


def percentile(values, pct):
    """Nearest-rank percentile (the smallest value with at least pct % of values at or below
    it); None for no values."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    rank = max(1, int(math.ceil(pct / 100.0 * len(ordered) - 1e-9)))
    return ordered[rank - 1]


def alias_roles(plan):
    """{gateway alias: [roles]} from plan.roles; the alias-alt<N> groups of the gateway map to
    their alias's roles."""
    out = {}
    for role, entry in sorted((plan.get("roles") or {}).items()):
        out.setdefault(entry.get("alias") or role, []).append(role)
    return out


def role_of(alias, aliases):
    """The report's name for the traffic of a gateway group: the role (or roles, joined by +)
    of its alias, ``intent`` for the intent group, else the group itself."""
    if alias is None:
        return "(unknown)"
    base = alias.split("-alt")[0] if "-alt" in alias and alias.split("-alt")[-1].isdigit() else alias
    roles = aliases.get(base)
    return "+".join(roles) if roles else alias


def sensitive_roles(plan, extra=()):
    """Roles whose traffic stays on local or self-hosted routes: every role when the blueprint
    says ``constraints.sensitive``, else those the plan marks ``roles.<role>.sensitive``, plus
    ``extra``."""
    roles = set(extra or ())
    blueprint = plan.get("blueprint") or {}
    if (blueprint.get("constraints") or {}).get("sensitive"):
        roles.update((plan.get("roles") or {}).keys())
    for role, entry in (plan.get("roles") or {}).items():
        if entry.get("sensitive"):
            roles.add(role)
    return roles


def required_quality(plan, role):
    """The score a route must reach to take over a role's traffic: the role's own minimum when
    the plan has one (``roles.<role>.min_quality_score``), else the plan's quality threshold
    (``checks.quality.required_score``)."""
    entry = (plan.get("roles") or {}).get(role) or {}
    if entry.get("min_quality_score") is not None:
        return float(entry["min_quality_score"])
    score = ((plan.get("checks") or {}).get("quality") or {}).get("required_score")
    return float(score) if score is not None else 0.0


# --- aggregating ---------------------------------------------------------------------------

def _bucket():
    return {"requests": 0, "failures": 0, "tokens_in": 0, "tokens_out": 0, "cost_usd": 0.0,
            "latencies": [], "ttfts": []}


def _add(bucket, row):
    bucket["requests"] += 1
    if row.get("status") != "success":
        bucket["failures"] += 1
    bucket["tokens_in"] += int(row.get("tokens_in") or 0)
    bucket["tokens_out"] += int(row.get("tokens_out") or 0)
    bucket["cost_usd"] += float(row.get("cost_usd") or 0.0)
    if row.get("status") == "success":
        bucket["latencies"].append(row.get("latency_s"))
        bucket["ttfts"].append(row.get("ttft_s"))


def _close(bucket):
    out = dict((k, v) for k, v in bucket.items() if k not in ("latencies", "ttfts"))
    out["cost_usd"] = round(out["cost_usd"], 6)
    for name, values in (("latency", bucket["latencies"]), ("ttft", bucket["ttfts"])):
        out[name + "_p50_s"] = percentile(values, 50)
        out[name + "_p95_s"] = percentile(values, 95)
    return out


def summarise(records, plan):
    """Totals, and spend/latency per role, per model (deployment) and per day (UTC)."""
    aliases = alias_roles(plan)
    total, by_role, by_model, by_day = _bucket(), {}, {}, {}
    for row in records:
        _add(total, row)
        _add(by_role.setdefault(role_of(row.get("alias"), aliases), _bucket()), row)
        _add(by_model.setdefault(row.get("deployment") or row.get("model") or "(unknown)", _bucket()), row)
        _add(by_day.setdefault((row.get("ts") or "")[:10] or "(no date)", _bucket()), row)
    times = sorted(r["ts"] for r in records if r.get("ts"))
    return {
        "requests": total["requests"],
        "total": _close(total),
        "first": times[0] if times else None,
        "last": times[-1] if times else None,
        "by_role": dict((k, _close(v)) for k, v in sorted(by_role.items())),
        "by_model": dict((k, _close(v)) for k, v in sorted(by_model.items())),
        "by_day": dict((k, _close(v)) for k, v in sorted(by_day.items())),
    }


# --- routes and repricing ------------------------------------------------------------------

def route_from_deployment(dep, busy_hours=None):
    """A route from a plan deployment or one of its alternatives: priced per second of GPU time
    at its single-stream decode and its prefill rate, times its ``billing_factor``: what the
    plan bills per busy hour (cold starts, minimum billing, setup fee: ``cost_usd`` over
    ``price x (hours - cold start)``). An alternative the plan did not price (no hours) bears its own
    cold start on the busy hours of the deployment it stands in for (``busy_hours``). Owned
    hardware and the local engine are ``local``, the rest (our weights on a rented machine)
    ``self_hosted``."""
    model = dep.get("model") or {}
    local = dep.get("provider") == "local" or dep.get("pricing") == "owned"
    price = float(dep.get("price_per_hour_usd") or 0.0)
    cold_h = float(dep.get("cold_start_s") or 0.0) / 3600.0
    factor = 1.0
    if dep.get("hours") is not None and price > 0:
        busy = float(dep["hours"]) - cold_h
        if busy > 0 and dep.get("cost_usd") is not None:
            factor = max(1.0, float(dep["cost_usd"]) / (price * busy))
    elif busy_hours:
        factor = (busy_hours + cold_h) / busy_hours
    return {
        "name": dep.get("name") or "%s %s %s" % (dep.get("offer_id"), model.get("key"), model.get("quantization")),
        "provider": dep.get("provider"),
        "kind": "local" if local else "self_hosted",
        "model": "%s %s" % (model.get("name") or model.get("key"), model.get("quantization") or ""),
        "offer_id": dep.get("offer_id"),
        "identity": (dep.get("offer_id"), model.get("key"), model.get("quantization")),
        "quality_score": float(dep.get("quality_score") or 0.0),
        "price_per_hour_usd": price,
        "decode_tok_s": float(dep.get("single_stream_tok_s") or dep.get("throughput_tok_s") or 0.0),
        "prefill_tok_s": float(dep.get("prefill_tok_s") or 0.0),
        "billing_factor": round(factor, 4),
        "source": "plan",
    }


def plan_routes(plan):
    """The plan's deployments and their alternatives as routes (deduplicated)."""
    routes, seen = [], set()
    for dep in plan.get("deployments") or []:
        busy = float(dep.get("hours") or 0.0) - float(dep.get("cold_start_s") or 0.0) / 3600.0
        for entry in [dep] + list(dep.get("alternatives") or []):
            route = route_from_deployment(entry, busy if busy > 0 else None)
            if route["identity"] not in seen:
                seen.add(route["identity"])
                routes.append(route)
    return routes


def api_routes(models):
    """The per-token API models of the catalog (``api_models`` entries as dicts: id, provider,
    name, input_usd_per_mtok, output_usd_per_mtok, score) as ``kind: api`` routes."""
    routes = []
    for model in models:
        score = model.get("score") or {}
        routes.append({
            "name": model.get("litellm_model") or model["id"],
            "provider": model["provider"],
            "kind": "api",
            "model": model.get("name") or model.get("model"),
            "quality_score": float(score.get("value") or 0.0),
            "usd_per_m_input": float(model["input_usd_per_mtok"]),
            "usd_per_m_output": float(model["output_usd_per_mtok"]),
            "source": "catalog %s (%s)" % (model["id"], model.get("as_of") or "undated"),
        })
    return routes


def check_route(route):
    """The route itself, or SpendError naming what it lacks."""
    name = route.get("name") or "a route"
    if route.get("kind") not in KINDS:
        raise SpendError("route %s: kind must be one of %s, not %r" % (name, ", ".join(KINDS), route.get("kind")))
    per_token = route.get("usd_per_m_input") is not None or route.get("usd_per_m_output") is not None
    per_second = route.get("price_per_hour_usd") is not None
    if per_token == per_second:
        raise SpendError("route %s: give either usd_per_m_input/usd_per_m_output (per token) or "
                         "price_per_hour_usd with decode_tok_s and prefill_tok_s (per GPU second)" % name)
    if per_second and (float(route.get("decode_tok_s") or 0) <= 0 or float(route.get("prefill_tok_s") or 0) <= 0):
        raise SpendError("route %s: a per-second route needs decode_tok_s and prefill_tok_s above 0" % name)
    if route.get("quality_score") is None:
        raise SpendError("route %s: quality_score is missing" % name)
    return route


def reprice(traffic, route):
    """What ``traffic`` (requests, tokens_in, tokens_out) would have cost on ``route``.

    Per token: tokens x price per million. Per GPU second, the way the gateway prices a rented
    GPU route (busy seconds x price per hour / 3600): each request holds the machine for
    input / prefill rate + output / single-stream decode rate; times the route's
    ``billing_factor`` (default 1) for what is billed beyond the busy time."""
    tin, tout = float(traffic["tokens_in"]), float(traffic["tokens_out"])
    if route.get("usd_per_m_input") is not None or route.get("usd_per_m_output") is not None:
        return (tin * float(route.get("usd_per_m_input") or 0.0)
                + tout * float(route.get("usd_per_m_output") or 0.0)) / 1e6
    seconds = tin / float(route["prefill_tok_s"]) + tout / float(route["decode_tok_s"])
    return seconds * float(route["price_per_hour_usd"]) / 3600.0 * float(route.get("billing_factor") or 1.0)


def billed(logged, current):
    """The logged spend of a role as its provider bills it: a GPU route's busy seconds times
    the route's billing factor; per-token spend as logged."""
    if current and current.get("price_per_hour_usd") is not None:
        return logged * float(current.get("billing_factor") or 1.0)
    return logged


def _current_route(plan, role, routes):
    dep_name = ((plan.get("roles") or {}).get(role) or {}).get("deployment")
    dep = next((d for d in plan.get("deployments") or [] if d.get("name") == dep_name), None)
    if dep is None:
        return None
    identity = route_from_deployment(dep)["identity"]
    return next((r for r in routes if r.get("identity") == identity), route_from_deployment(dep))


def recommend(summary, plan, routes, extra_sensitive=(), top=3):
    """Per role of the log: its logged spend, the routes that meet its quality and
    sensitivity repriced on its traffic (cheapest first), and the saving of the cheapest.

    Traffic of a group shared by several roles (``architect+reviewer``) must meet the strictest
    of them, and stays local when any of them is sensitive."""
    routes = [check_route(r) for r in routes]
    sensitive = sensitive_roles(plan, extra_sensitive)
    out = []
    for label, traffic in sorted(summary["by_role"].items()):
        roles = [r for r in label.split("+") if r in (plan.get("roles") or {})]
        if not roles or not traffic["tokens_in"] + traffic["tokens_out"]:
            continue
        floor = max(required_quality(plan, r) for r in roles)
        is_sensitive = any(r in sensitive for r in roles)
        current = _current_route(plan, roles[0], routes)
        current_identity = current.get("identity") if current else None
        eligible, excluded = [], {"quality": 0, "sensitive": 0}
        for route in routes:
            if current_identity is not None and route.get("identity") == current_identity:
                continue
            if is_sensitive and route["kind"] == "api":
                excluded["sensitive"] += 1
                continue
            if float(route["quality_score"]) < floor:
                excluded["quality"] += 1
                continue
            eligible.append((reprice(traffic, route), route["name"], route))
        eligible.sort(key=lambda item: (item[0], item[1]))
        logged = traffic["cost_usd"]
        billed_now = billed(logged, current)
        best = eligible[0] if eligible else None
        saving = billed_now - best[0] if best else 0.0
        out.append({
            "role": label,
            "sensitive": is_sensitive,
            "required_quality": floor,
            "traffic": {"requests": traffic["requests"], "tokens_in": traffic["tokens_in"],
                        "tokens_out": traffic["tokens_out"]},
            "logged_cost_usd": round(logged, 6),
            "billed_cost_usd": round(billed_now, 6),
            "current": _route_doc(current, reprice(traffic, current) if current else None),
            "candidates": [_route_doc(r, c) for c, _n, r in eligible[:top]],
            "excluded": excluded,
            "best": _route_doc(best[2], best[0]) if best else None,
            "saving_usd": round(saving, 6) if best and saving > 0 else 0.0,
            "saving_pct": round(100.0 * saving / billed_now, 1) if best and saving > 0 and billed_now > 0 else 0.0,
        })
    return out


def _route_doc(route, cost):
    if route is None:
        return None
    keys = ("name", "provider", "kind", "model", "quality_score", "source", "billing_factor")
    doc = dict((k, route.get(k)) for k in keys)
    doc["cost_usd"] = round(cost, 6) if cost is not None else None
    return doc


def report(records, plan, routes, skipped=0, extra_sensitive=(), generated_at=None):
    """The report document (what spend-report.json holds; the Markdown and HTML render it)."""
    summary = summarise(records, plan)
    recs = recommend(summary, plan, routes, extra_sensitive)
    return {
        "schema_version": SCHEMA_VERSION,
        "stack_id": plan.get("stack_id"),
        "project": ((plan.get("blueprint") or {}).get("project") or {}).get("name"),
        "generated_at": generated_at,
        "skipped_lines": skipped,
        "summary": summary,
        "recommendations": recs,
        "routes_considered": len(routes),
        "saving_usd": round(sum(r["saving_usd"] for r in recs), 6),
        "planned_cost_usd": (plan.get("totals") or {}).get("cost_usd"),
    }


# --- rendering -----------------------------------------------------------------------------

def _esc(text):
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def _usd(value):
    if value is None:
        return "-"
    return "$%.4f" % value if abs(value) < 1 else "$%.2f" % value


def _secs(value):
    return "-" if value is None else ("%.0f ms" % (value * 1000) if value < 1 else "%.2f s" % value)


def bar_chart(title, items, width=640, bar_h=22):
    """An inline SVG horizontal bar chart of [(label, usd)], no script, no external font."""
    items = list(items)
    label_w, pad, top = 220, 8, 30
    height = top + max(1, len(items)) * (bar_h + pad) + pad
    high = max([v for _l, v in items] + [0.0]) or 1.0
    scale = (width - label_w - 110) / high
    out = ['<svg xmlns="http://www.w3.org/2000/svg" role="img" width="%d" height="%d" '
           'viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">' % (width, height, width, height),
           '<title>%s</title>' % _esc(title),
           '<text x="4" y="18" font-size="14" font-weight="bold">%s</text>' % _esc(title)]
    for index, (label, value) in enumerate(items):
        y = top + index * (bar_h + pad)
        out.append('<text x="%d" y="%d" text-anchor="end">%s</text>'
                   % (label_w - 6, y + bar_h * 0.7, _esc(label if len(label) <= 32 else label[:31] + "…")))
        out.append('<rect x="%d" y="%d" width="%.1f" height="%d" fill="#1f77b4"/>'
                   % (label_w, y, max(value * scale, 0.5), bar_h))
        end = label_w + max(value * scale, 0.5) + 6
        out.append('<text x="%.1f" y="%d">%s</text>' % (end, y + bar_h * 0.7, _esc(_usd(value))))
    out.append("</svg>")
    return "\n".join(out)


def charts(doc):
    summary = doc["summary"]
    return [
        ("Spend per role", bar_chart("Spend per role (USD)",
                                     [(k, v["cost_usd"]) for k, v in summary["by_role"].items()])),
        ("Spend per model", bar_chart("Spend per model / deployment (USD)",
                                      [(k, v["cost_usd"]) for k, v in summary["by_model"].items()])),
        ("Spend per day", bar_chart("Spend per day, UTC (USD)",
                                    [(k, v["cost_usd"]) for k, v in summary["by_day"].items()])),
    ]


def _table_rows(group):
    rows = []
    for name, b in group.items():
        rows.append([name, str(b["requests"]), str(b["failures"]), str(b["tokens_in"]), str(b["tokens_out"]),
                     _usd(b["cost_usd"]), _secs(b["latency_p50_s"]), _secs(b["latency_p95_s"]),
                     _secs(b["ttft_p50_s"]), _secs(b["ttft_p95_s"])])
    return rows


_HEAD = ["", "requests", "failed", "tokens in", "tokens out", "spend", "latency p50", "latency p95",
         "TTFT p50", "TTFT p95"]


def _rec_lines(doc):
    lines = []
    for rec in doc["recommendations"]:
        cur = rec["current"] or {}
        head = "**%s**%s: logged %s for %d requests on `%s` (%s, quality %s), billed about %s%s." % (
            rec["role"], " (sensitive: local or self-hosted routes only)" if rec["sensitive"] else "",
            _usd(rec["logged_cost_usd"]), rec["traffic"]["requests"], cur.get("name", "?"), cur.get("model", "?"),
            cur.get("quality_score", "?"), _usd(rec["billed_cost_usd"]),
            (" (x%.2f for cold starts and minimum billing; the model prices the traffic at %s)"
             % (cur.get("billing_factor") or 1.0, _usd(cur.get("cost_usd")))) if cur else "")
        if rec["best"] and rec["saving_usd"] > 0:
            best = rec["best"]
            head += " Cheapest route meeting quality %g: `%s` (%s, %s, quality %s) at %s — saves %s (%.1f %%)." % (
                rec["required_quality"], best["name"], best["model"], best["kind"], best["quality_score"],
                _usd(best["cost_usd"]), _usd(rec["saving_usd"]), rec["saving_pct"])
        elif rec["best"]:
            head += " No route meeting quality %g is cheaper (the cheapest, `%s`, costs %s)." % (
                rec["required_quality"], rec["best"]["name"], _usd(rec["best"]["cost_usd"]))
        else:
            head += " No other route meets quality %g%s." % (
                rec["required_quality"], " and stays local" if rec["sensitive"] else "")
        excluded = rec["excluded"]
        left = (["%d below the quality" % excluded["quality"]] if excluded["quality"] else []) + \
            (["%d third-party APIs (sensitive)" % excluded["sensitive"]] if excluded["sensitive"] else [])
        if left:
            head += " Left out: %s." % ", ".join(left)
        lines.append(head)
        if rec["candidates"]:
            lines.append([[c["name"], c["model"], c["kind"], str(c["quality_score"]), _usd(c["cost_usd"])]
                          for c in rec["candidates"]])
    return lines


def _intro(doc):
    summary = doc["summary"]
    total = summary["total"]
    return [
        "Stack `%s` (%s). Requests logged: %d (%d failed) from %s to %s; %d unreadable lines skipped."
        % (doc["stack_id"], doc["project"], summary["requests"], total["failures"], summary["first"] or "-",
           summary["last"] or "-", doc["skipped_lines"]),
        "Spend %s for %d input and %d output tokens; latency p50 %s, p95 %s; plan's estimate for the whole "
        "project %s." % (_usd(total["cost_usd"]), total["tokens_in"], total["tokens_out"],
                         _secs(total["latency_p50_s"]), _secs(total["latency_p95_s"]),
                         _usd(doc["planned_cost_usd"])),
        "Repriced on %d routes: the cheapest that meet each role's quality and sensitivity would have saved "
        "%s." % (doc["routes_considered"], _usd(doc["saving_usd"])),
    ]


_METHOD = ("Logged cost is the gateway's (LiteLLM's cost per token, or a GPU route's price per "
           "second x latency). A GPU route bills more than its busy seconds: billed = logged x the "
           "route's billing factor, the plan's billed cost over its busy hours (cold starts, "
           "minimum billing, setup fee; an alternative bears its own cold start on the same busy "
           "hours). Repricing: per-token routes at their price per million tokens; GPU routes "
           "per busy second (input / prefill rate + output / single-stream decode rate, x price "
           "per hour / 3600) x their billing factor. Saving = billed now - cheapest repriced. "
           "Idle time between requests until scale-to-zero is not in it. Percentiles are "
           "nearest-rank over successful requests; TTFT over streams only.")


def render_markdown(doc):
    def table(head, rows):
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return out

    summary = doc["summary"]
    lines = ["# Spend report: %s" % (doc["project"] or doc["stack_id"]), ""]
    lines += ["- " + text for text in _intro(doc)] + ["", "## Recommendations", ""]
    for item in _rec_lines(doc) or ["No traffic to reprice."]:
        if isinstance(item, list):
            lines += [""] + ["  " + row for row in table(["route", "model", "kind", "quality", "cost"], item)] + [""]
        else:
            lines.append("- " + item)
    for title, key in (("Per role", "by_role"), ("Per model", "by_model"), ("Per day (UTC)", "by_day")):
        lines += ["", "## " + title, ""] + table(_HEAD, _table_rows(summary[key]))
    lines += ["", "Charts: the HTML report (inline SVG).", "", "How: " + _METHOD, ""]
    return "\n".join(lines)


def render_html(doc):
    def table(head, rows):
        out = ["<table><tr>" + "".join("<th>%s</th>" % _esc(h) for h in head) + "</tr>"]
        out += ["<tr>" + "".join("<td>%s</td>" % _esc(c) for c in row) + "</tr>" for row in rows]
        return "\n".join(out + ["</table>"])

    summary = doc["summary"]
    title = "Spend report: %s" % (doc["project"] or doc["stack_id"])
    parts = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8">',
             "<title>%s</title>" % _esc(title),
             "<style>body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
             "text-align:right}td:first-child,th:first-child{text-align:left}</style></head><body>",
             "<h1>%s</h1>" % _esc(title),
             "<ul>" + "".join("<li>%s</li>" % _esc(t) for t in _intro(doc)) + "</ul>",
             "<h2>Recommendations</h2>"]
    recs = _rec_lines(doc)
    if not recs:
        parts.append("<p>No traffic to reprice.</p>")
    for item in recs:
        if isinstance(item, list):
            parts.append(table(["route", "model", "kind", "quality", "cost"], item))
        else:
            parts.append("<p>%s</p>" % _esc(item).replace("**", ""))
    for heading, svg in charts(doc):
        parts += ["<h2>%s</h2>" % _esc(heading), svg]
    for heading, key in (("Per role", "by_role"), ("Per model", "by_model"), ("Per day (UTC)", "by_day")):
        parts += ["<h2>%s</h2>" % _esc(heading), table(_HEAD, _table_rows(summary[key]))]
    parts += ["<p>%s</p>" % _esc("How: " + _METHOD), "</body></html>", ""]
    return "\n".join(parts)
