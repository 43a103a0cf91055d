# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the codestack gateway spent, request by request, without a database.

LiteLLM keeps its spend logs in its database. This module is a LiteLLM custom logger instead,
loaded through the proxy's ``litellm_settings.callbacks`` as ``codestack_spend.spend_logger``.
It appends one JSON line per call to the file named by ``CODESTACK_SPEND_LOG`` (default
``spend.jsonl`` beside this file), created mode 0600:

    {"v": 1, "ts": "2026-12-01T12:00:00.123Z", "status": "success", "alias": "coder",
     "deployment": "coder-qwen...-rtx4090", "route": "coder--coder-qwen...-rtx4090",
     "model": "hosted_vllm/coder", "provider": "hosted_vllm", "key": "ide", "stream": true,
     "tokens_in": 812, "tokens_out": 133, "latency_s": 2.41, "ttft_s": 0.31,
     "cost_usd": 0.000228, "cost_source": "per_second", "cache_hit": false, "error": null}

Never the key itself (only its name, from the scoped-key check or "admin"), never the prompt or
the answer. A failed call (including one attempt that a fallback then answered) is a line with
``status: failure`` and the error's class and HTTP code, not its message (it can quote input).
``cost_source`` says where the cost comes from: ``litellm`` (its cost calculator, per-token
prices) or ``per_second`` (the route's per-second GPU price x latency, computed here because
LiteLLM 1.102.4 reports 0 for such routes).

LiteLLM calls the async hooks from its logging worker after the response has been sent, so the
file write is off the request's path; it is one ``write`` of one line to a descriptor opened
with O_APPEND, so lines of concurrent calls or of several workers do not interleave.

Loading it also settles one import for the whole process (``remember_missing_otel``): LiteLLM
1.102.4 imports its OpenTelemetry fan-out inside every request's authentication
(``user_api_key_auth._seed_request_destinations``) and swallows the error. Without
opentelemetry-sdk (the gateway's venv has none) that import fails anew on every request, a
search of the whole module path each time: about a quarter of the proxy's request CPU in a
py-spy profile (docs/performance.md).
"""

import datetime
import json
import os
import sys
import threading

from litellm._logging import verbose_proxy_logger
from litellm.integrations.custom_logger import CustomLogger

SCHEMA_VERSION = 1
OTEL_FAN_OUT = "litellm.integrations.otel.logger"


def remember_missing_otel(modules=None):
    """Make a failing import of LiteLLM's OTel fan-out fail at once from now on: a ``None``
    entry in ``sys.modules`` raises ImportError without searching the path. The import fails
    either way (the request goes on without tenant trace routing, as before); where it
    succeeds, nothing changes. Returns True when the failure was remembered."""
    modules = sys.modules if modules is None else modules
    if OTEL_FAN_OUT in modules:
        return False
    try:
        __import__(OTEL_FAN_OUT)
    except ImportError:
        modules[OTEL_FAN_OUT] = None
        return True
    return False


def _iso(epoch):
    try:
        moment = datetime.datetime.fromtimestamp(float(epoch), tz=datetime.timezone.utc)
    except (TypeError, ValueError, OverflowError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value):
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _deployment(route_id, alias):
    """The plan deployment of a route id the gateway role writes (``<group>--<deployment>``)."""
    if route_id and alias and route_id.startswith(alias + "--"):
        return route_id[len(alias) + 2:]
    return route_id


def _key_name(metadata):
    """The key's name (a scoped key's, or "admin" for the master key), never the key."""
    alias = metadata.get("user_api_key_alias")
    if alias:
        return alias
    if metadata.get("user_api_key_user_id") in ("codestack-admin", "default_user_id"):
        return "admin"
    return None


def _per_second(litellm_params, latency):
    """Cost of a route priced per second (GPU time), as the gateway role prices it."""
    rate = sum(_float((litellm_params or {}).get(k)) or 0.0
               for k in ("input_cost_per_second", "output_cost_per_second"))
    return rate * latency if rate > 0 and latency else None


def record(payload, status, litellm_params=None):
    """One log line (a dict) from LiteLLM's standard logging payload and the route's
    ``litellm_params`` (for its per-second price)."""
    payload = payload or {}
    metadata = payload.get("metadata") or {}
    hidden = payload.get("hidden_params") or {}
    alias = payload.get("model_group") or None
    route = payload.get("model_id") or hidden.get("model_id")
    start, end = _float(payload.get("startTime")), _float(payload.get("endTime"))
    first = _float(payload.get("completionStartTime"))
    stream = bool(payload.get("stream"))
    latency = round(end - start, 4) if start is not None and end is not None else None
    ttft = round(first - start, 4) if stream and first is not None and start is not None and first >= start else None
    cost, source = round(_float(payload.get("response_cost")) or 0.0, 10), "litellm"
    if not cost:
        # LiteLLM 1.102.4 reports 0 for routes priced per second (input_cost_per_second on an
        # openai/ or hosted_vllm/ model): the GPU time the route held is priced here instead.
        timed = _per_second(litellm_params, latency)
        if timed is not None:
            cost, source = round(timed, 10), "per_second"
    error = None
    if status != "success":
        info = payload.get("error_information") or {}
        error = {"class": info.get("error_class"), "code": info.get("error_code")}
    return {
        "v": SCHEMA_VERSION,
        "ts": _iso(end if end is not None else start),
        "status": status,
        "alias": alias,
        "deployment": _deployment(route, alias),
        "route": route,
        "model": hidden.get("litellm_model_name") or payload.get("model"),
        "provider": payload.get("custom_llm_provider"),
        "key": _key_name(metadata),
        "stream": stream,
        "tokens_in": _int(payload.get("prompt_tokens")),
        "tokens_out": _int(payload.get("completion_tokens")),
        "latency_s": latency,
        "ttft_s": ttft,
        "cost_usd": cost,
        "cost_source": source,
        "cache_hit": bool(payload.get("cache_hit")),
        "error": error,
    }


class SpendLogger(CustomLogger):
    """Appends one JSON line per call to a 0600 file."""

    def __init__(self, path=None, **kwargs):
        super(SpendLogger, self).__init__(**kwargs)
        self.path = path or os.environ.get("CODESTACK_SPEND_LOG") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "spend.jsonl")
        self._fd = None
        self._lock = threading.Lock()
        self.lost = 0
        self._warned = set()

    def _descriptor(self):
        if self._fd is None:
            with self._lock:
                if self._fd is None:
                    # 0600 from the start (umask cannot widen it); an existing file keeps its mode.
                    self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        return self._fd

    def write(self, line):
        data = (json.dumps(line, separators=(",", ":"), sort_keys=False) + "\n").encode("utf-8")
        os.write(self._descriptor(), data)

    def _log(self, kwargs, status):
        try:
            kwargs = kwargs or {}
            self.write(record(kwargs.get("standard_logging_object"), status, kwargs.get("litellm_params")))
        except Exception as exc:  # pylint: disable=broad-except
            # A full disk must not fail the user's request (it has been answered already): say
            # it in the proxy's log, once per kind of error, and count what was lost.
            self.lost += 1
            if type(exc).__name__ not in self._warned:
                self._warned.add(type(exc).__name__)
                verbose_proxy_logger.warning("codestack spend log %s: %s (lines lost so far: %d)",
                                             self.path, exc, self.lost)

    async def async_log_success_event(self, kwargs, response_obj, start_time, end_time):
        self._log(kwargs, "success")

    async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
        self._log(kwargs, "failure")


remember_missing_otel()
spend_logger = SpendLogger()
