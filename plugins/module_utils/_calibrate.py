# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The calibration run: measure each role alias through the gateway and re-price the plan.

Each sample is one short streaming chat completion (OpenAI wire format, ``stream_options:
{include_usage: true}``) through the LiteLLM gateway:

    ttft_s       = first content chunk - request sent
    decode_tok_s = (completion_tokens - 1) / (last content chunk - first content chunk)

``completion_tokens`` is the final usage chunk's figure, or the number of content chunks when
that is larger (each chunk carries at least one token; a smaller usage figure is the gateway's
own tokenizer estimate). A route's figure is the median of its samples; a
deployment's measured decode is the median over all samples of the routes it serves, and the
deployment is re-priced with it by the planner's own ``Option.block`` (docs/calibration.md).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import json
import os
import tempfile
import time

from ansible_collections.llmops.codestack.plugins.module_utils._http import ApiError, HttpClient
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    ROLES,
    PlanError,
    predicted_ttft_s,
    reprice_deployment,
)

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - Ansible itself needs PyYAML
    HAS_YAML = False

DEFAULT_PROMPT = ("Count upwards from 1, writing each number on its own line, until you are "
                  "told to stop.")


class CalibrationError(Exception):
    """A calibration request failed; ``status`` and ``body`` come from the gateway."""

    def __init__(self, message, status=None, body=None):
        super(CalibrationError, self).__init__(message)
        self.status = status
        self.body = body


def _median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2.0


def _ratio(measured, predicted):
    if measured is None or not predicted:
        return None
    return round(measured / float(predicted), 3)


def read_stream(resp, sent_at, clock=time.monotonic):
    """Read one server-sent-event chat completion stream; return the sample's figures."""
    first = last = None
    chunks = 0
    usage = {}
    while True:
        raw = resp.readline()
        if not raw:
            break
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            event = json.loads(data)
        except ValueError:
            raise CalibrationError("the gateway sent a stream event that is not JSON: %s"
                                   % data[:200])
        if event.get("error"):
            err = event["error"]
            raise CalibrationError("the stream ended with an error: %s"
                                   % (err.get("message") if isinstance(err, dict) else err),
                                   body=event)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content"):
                now = clock()
                first = now if first is None else first
                last = now
                chunks += 1
    if first is None:
        raise CalibrationError("the stream carried no tokens (%s)"
                               % ("usage %s" % json.dumps(usage) if usage else "no usage"))
    # Every content chunk carries at least one token, so the chunk count is a lower bound: a
    # smaller usage figure is the gateway's own tokenizer estimate (LiteLLM counts itself when
    # the engine, like llama-cpp-python's server, sends no usage) and is not used.
    reported = usage.get("completion_tokens") or 0
    tokens = max(reported, chunks)
    span = last - first
    return {
        "ttft_s": first - sent_at,
        "decode_tok_s": (tokens - 1) / span if tokens > 1 and span > 0 else None,
        "completion_tokens": tokens,
        "prompt_tokens": usage.get("prompt_tokens"),
        "tokens_from": "usage" if reported >= chunks else "chunks",
    }


class Calibrator:
    """Streams ``requests`` completions per role alias through one gateway."""

    def __init__(self, api_base, api_key, timeout=30, retries=3, requests=3, max_tokens=64,
                 prompt=DEFAULT_PROMPT, client=None, warmup=2, ca_path=None):
        base = api_base.rstrip("/")
        # ca_path: the only authority trusted (the stack's reverse proxy with its internal CA).
        self.client = client or HttpClient(base if base.endswith("/v1") else base + "/v1",
                                           token=api_key, timeout=timeout, retries=retries,
                                           ca_path=ca_path)
        self.requests = requests
        self.warmup = warmup
        self.max_tokens = max_tokens
        self.prompt = prompt

    def sample(self, alias, index, max_tokens=None):
        body = {
            "model": alias,
            # a different first line per sample keeps the engine's prefix cache out of TTFT
            "messages": [{"role": "user", "content": "Run %d. %s" % (index + 1, self.prompt)}],
            "max_tokens": max_tokens or self.max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            return self.client.request("POST", "chat/completions", body=body, expect=(200,),
                                       reader=read_stream)
        except ApiError as exc:
            if exc.status == 401:
                raise CalibrationError(
                    "the gateway refused the key (HTTP 401) for alias '%s': pass the LiteLLM "
                    "master key as api_key" % alias, status=401, body=exc.body)
            raise CalibrationError("alias '%s': %s" % (alias, exc), status=exc.status,
                                   body=exc.body)
        except CalibrationError as exc:
            raise CalibrationError("alias '%s': %s" % (alias, exc), status=exc.status,
                                   body=exc.body)

    def measure(self, alias):
        # LiteLLM's first requests pay one-off set-up (about 1 s of TTFT here; one warm-up was
        # not enough for the first alias), so short warm-up requests are sent and not counted.
        for index in range(self.warmup):
            self.sample(alias, self.requests + index, max_tokens=2)
        return [self.sample(alias, index) for index in range(self.requests)]


def _deployments(plan):
    return dict((d["name"], d) for d in plan["deployments"])


def _route(plan, role, deployment, samples):
    measured_tok_s = _median(s["decode_tok_s"] for s in samples) if samples else None
    measured_ttft = _median(s["ttft_s"] for s in samples) if samples else None
    prompt_tokens = _median(s["prompt_tokens"] for s in samples) if samples else None
    predicted_tok_s = deployment["single_stream_tok_s"]
    if prompt_tokens is not None:
        # predicted for the prompt actually sent, so that the two figures compare
        predicted_prompt = prompt_tokens
        predicted_ttft = predicted_ttft_s(deployment["prefill_tok_s"], predicted_tok_s,
                                          prompt_tokens)
    else:
        # the plan's reference prompt: shown, but not compared with a shorter measured one
        predicted_prompt = deployment.get("ttft_prompt_tokens")
        predicted_ttft = deployment.get("ttft_s")
    return {
        "role": role,
        "alias": plan["roles"][role]["alias"],
        "deployment": deployment["name"],
        "gpu": deployment["gpu"]["name"],
        "gpu_count": deployment["gpu"]["count"],
        "model": deployment["model"]["key"],
        "quantization": deployment["model"]["quantization"],
        "engine": deployment["engine"],
        "predicted": {
            "tok_s": predicted_tok_s,
            "ttft_s": round(predicted_ttft, 3) if predicted_ttft is not None else None,
            "prompt_tokens": predicted_prompt,
            "source": deployment.get("throughput_source"),
        },
        "measured": {
            "tok_s": round(measured_tok_s, 2) if measured_tok_s is not None else None,
            "ttft_s": round(measured_ttft, 3) if measured_ttft is not None else None,
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _median(s["completion_tokens"] for s in samples)
            if samples else None,
            "samples": len(samples),
        },
        "ratio": {"tok_s": _ratio(measured_tok_s, predicted_tok_s),
                  "ttft_s": _ratio(measured_ttft, predicted_ttft)
                  if prompt_tokens is not None else None},
    }


def _reprice(plan, measured):
    """Per deployment and in total: the plan's hours and cost, and again at measured decode."""
    rows = []
    note = None
    for dep in plan["deployments"]:
        row = {"deployment": dep["name"], "measured_tok_s": None,
               "before": {"hours": dep["hours"], "cost_usd": dep["cost_usd"]},
               "after": {"hours": dep["hours"], "cost_usd": dep["cost_usd"]}}
        tok_s = measured.get(dep["name"])
        if tok_s is not None:
            row["measured_tok_s"] = round(tok_s, 2)
            try:
                hours, cost = reprice_deployment(plan, dep, decode_tok_s=tok_s)
                row["after"] = {"hours": round(hours, 3), "cost_usd": round(cost, 4)}
            except PlanError as exc:
                note = str(exc)
        rows.append(row)

    def total(key):
        return {"hours": round(max(r[key]["hours"] for r in rows), 3),
                "cost_usd": round(sum(r[key]["cost_usd"] for r in rows), 4)}
    out = {"before": total("before"), "after": total("after"), "deployments": rows}
    if note:
        out["note"] = note
    return out


def calibrate(plan, calibrator, roles=None, now=None):
    """Measure every role alias of ``plan`` (or those in ``roles``) and re-price the plan.

    Returns ``{calibration: [per route], plan_repriced: {...}, measurements: [catalog
    entries]}``; a calibrator of None measures nothing (check mode) and returns the routes with
    their predictions only.
    """
    roles = list(roles or ROLES)
    unknown = [r for r in roles if r not in plan["roles"]]
    if unknown:
        raise CalibrationError("role(s) %s are not in the plan; the plan has %s"
                               % (", ".join(unknown), ", ".join(sorted(plan["roles"]))))
    deployments = _deployments(plan)
    by_alias = {}
    routes = []
    per_deployment = {}
    for role in roles:
        alias = plan["roles"][role]["alias"]
        deployment = deployments[plan["roles"][role]["deployment"]]
        if calibrator is None:
            samples = []
        elif alias in by_alias:
            samples = by_alias[alias]
        else:
            samples = by_alias[alias] = calibrator.measure(alias)
            per_deployment.setdefault(deployment["name"], []).extend(samples)
        routes.append(_route(plan, role, deployment, samples))
    measured = dict((name, _median(s["decode_tok_s"] for s in samples))
                    for name, samples in per_deployment.items())
    measured = dict((name, tok_s) for name, tok_s in measured.items() if tok_s is not None)
    now = now or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    entries = []
    for name, samples in per_deployment.items():
        dep = deployments[name]
        if name not in measured:
            continue
        ttft = _median(s["ttft_s"] for s in samples)
        prompt = _median(s["prompt_tokens"] for s in samples)
        model, quant = dep["model"]["key"], dep["model"]["quantization"]
        entries.append({
            "id": "%s/%s/%s" % (dep["offer_id"], model, quant),
            "offer": dep["offer_id"],
            "gpu": dep["gpu"]["id"],
            "gpu_count": dep["gpu"]["count"],
            "model": model,
            "quantization": quant,
            "engine": dep["engine"],
            "decode_tok_s": round(measured[name], 2),
            "ttft_s": round(ttft, 3),
            "prompt_tokens": int(prompt) if prompt is not None else None,
            "samples": len(samples),
            "measured_at": now.isoformat().replace("+00:00", "Z"),
            "as_of": now.date().isoformat(),
            "source": "calibration run %s" % plan["stack_id"],
        })
    return {"calibration": routes, "plan_repriced": _reprice(plan, measured),
            "measurements": entries}


def _fmt(value, pattern):
    return "-" if value is None else pattern % value


def render_markdown(plan, result):
    """The "Predicted vs measured" section (calibration.md)."""
    lines = ["## Predicted vs measured", ""]
    routes = result["calibration"]
    if result.get("skipped"):
        lines += ["Calibration skipped (check mode): nothing was measured.", ""]
    lines += [
        "Stack `%s`, plan of %s. Decode is single-stream tokens/s (completion tokens after the "
        "first, over the time from the first to the last token); TTFT is from sending the "
        "request to the first token, through the gateway. The prediction of TTFT is for the "
        "prompt length actually sent. Medians of %s request(s) per route."
        % (plan["stack_id"], plan.get("generated_at", "?"),
           max([r["measured"]["samples"] for r in routes] or [0])),
        "",
        "| route | deployment | GPU | model | predicted tok/s | measured tok/s | ratio "
        "| predicted TTFT s | measured TTFT s | ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in routes:
        lines.append("| %s | %s | %dx %s | %s %s | %s | %s | %s | %s | %s | %s |" % (
            r["alias"], r["deployment"], r["gpu_count"], r["gpu"], r["model"],
            r["quantization"], _fmt(r["predicted"]["tok_s"], "%.1f"),
            _fmt(r["measured"]["tok_s"], "%.1f"), _fmt(r["ratio"]["tok_s"], "%.2f"),
            _fmt(r["predicted"]["ttft_s"], "%.3f"), _fmt(r["measured"]["ttft_s"], "%.3f"),
            _fmt(r["ratio"]["ttft_s"], "%.2f")))
    rep = result["plan_repriced"]
    lines += [
        "",
        "### The plan re-priced with the measured decode",
        "",
        "| deployment | measured tok/s | hours before | hours after | cost before USD "
        "| cost after USD |",
        "|---|---|---|---|---|---|",
    ]
    for row in rep["deployments"]:
        lines.append("| %s | %s | %.3f | %.3f | %.4f | %.4f |" % (
            row["deployment"], _fmt(row["measured_tok_s"], "%.1f"), row["before"]["hours"],
            row["after"]["hours"], row["before"]["cost_usd"], row["after"]["cost_usd"]))
    lines.append("| **total** | | %.3f | %.3f | %.4f | %.4f |" % (
        rep["before"]["hours"], rep["after"]["hours"], rep["before"]["cost_usd"],
        rep["after"]["cost_usd"]))
    if rep.get("note"):
        lines += ["", "Not re-priced: %s" % rep["note"]]
    if result.get("measurements"):
        lines += ["", "Measurements recorded for the catalog (the next plan uses them):", ""]
        for entry in result["measurements"]:
            lines.append("- `%s`: %.1f tok/s decode, TTFT %.3f s (%d samples, %s)" % (
                entry["id"], entry["decode_tok_s"], entry["ttft_s"], entry["samples"],
                entry["measured_at"]))
    return "\n".join(lines) + "\n"


_HEADER = ("# Measured throughput, appended by llmops.codestack.route_calibrate (docs/"
           "calibration.md).\n# A catalog 'measurements' section: pass this file with the "
           "catalog files; for one\n# id the last entry wins, so the newest measurement "
           "prices the next plan.\n")


def append_measurements(path, entries):
    """Append catalog measurement entries to ``path`` (a catalog file), atomically, mode 0644.

    The file holds throughput figures only, never a key or URL."""
    doc = {}
    if os.path.exists(path):
        with open(path, "r") as handle:
            doc = yaml.safe_load(handle) or {}
        if not isinstance(doc, dict) or not isinstance(doc.get("measurements", []), list):
            raise CalibrationError("%s is not a catalog file with a 'measurements' list" % path)
    doc.setdefault("measurements", []).extend(
        dict((k, v) for k, v in entry.items() if v is not None) for entry in entries)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".measurements-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(_HEADER)
            yaml.safe_dump(doc, handle, default_flow_style=False, sort_keys=False)
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except (IOError, OSError):
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
