# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fakes of the paid per-token APIs (OpenRouter, DeepSeek, Mistral) and of Ollama.

They stand where a paid API or an uninstallable binary stands (Ollama's binary is not in the
registries reachable here) and speak each one's documented wire format:

- OpenAI-compatible ``POST .../chat/completions`` (also ``stream: true`` as server-sent events,
  the last chunk carrying ``usage``) and ``GET .../models``; paths as each provider documents
  them (OpenRouter under ``/api/v1``, DeepSeek at ``/`` and ``/v1``, Mistral under ``/v1``).
- Errors in each provider's documented shape: 401 (bad key), 402 (insufficient credits /
  balance), 429 with ``Retry-After`` (scripted with ``fail_next``), unknown model (OpenRouter
  400 "... is not a valid model ID", DeepSeek 400 "Model Not Exist", Mistral 400
  ``invalid_model``).
- Billing like the real service: every answered request costs its tokens x the model's price
  (the catalog's, so a plan and the fake's bill can be compared) and is taken from a credit
  balance; a request the balance cannot cover gets 402 and is not answered. Nothing is free,
  nothing is cached, no discount applies. Usage is counted the same way for every provider
  (about four characters per token), never less than the content sent and received.
- Latency like the real service: time to first token and output tokens at the catalog's
  ``ttft_s`` and ``output_tok_s``, divided by ``CODESTACK_CLOCK_SCALE`` (default 1).
- Provider billing APIs where documented: OpenRouter ``GET /api/v1/credits``, DeepSeek
  ``GET /user/balance``. Mistral documents none: the ledger is at ``/_control`` only.
- ``GET /_control`` (test-only): ``{"requests": [...], "ledger": [...], "balance_usd"}``;
  ``requests`` logs every request that reached the fake, answered or not.

Ollama (``OllamaFake``): ``GET /api/tags``, ``POST /api/chat`` and ``/api/generate`` (stream
by default, NDJSON, final object with ``prompt_eval_count``/``eval_count`` and durations in
nanoseconds), ``GET /api/version``, and its OpenAI-compatible ``/v1/chat/completions`` and
``/v1/models``. Unknown model: 404 ``{"error": "model \"x\" not found, try pulling it
first"}``. No key. Speed: the tag's ``decode_tok_s`` / ``prefill_tok_s``, one request at a time
per model (Ollama's default ``OLLAMA_NUM_PARALLEL`` behaviour under memory pressure).

Shapes not verified against the live services (no network here) are marked (unverified).
Standalone: ``python llm_api_fakes.py --provider openrouter --port 0 --port-file F``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import datetime
import json
import os
import threading
import time
import uuid
from http.server import ThreadingHTTPServer

try:
    from ._fakehttp import OneWriteHandler
except ImportError:  # run as a script
    from _fakehttp import OneWriteHandler

# Where each provider serves its OpenAI-compatible API (the api_base a client configures).
PREFIXES = {"openrouter": ("/api/v1",), "deepseek": ("", "/v1"), "mistral": ("/v1",)}


def clock_scale():
    try:
        scale = float(os.environ.get("CODESTACK_CLOCK_SCALE") or 1.0)
    except ValueError:
        scale = 1.0
    return scale if scale > 0 else 1.0


def count_tokens(text):
    """About four characters per token (the same rule for every fake), at least one."""
    return max(1, (len(text) + 3) // 4)


def _prompt_text(messages):
    parts = []
    for message in messages or []:
        content = message.get("content")
        if isinstance(content, list):   # OpenAI content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append("%s: %s" % (message.get("role", ""), content or ""))
    return "\n".join(parts)


def _answer_text(who, model, max_tokens):
    text = "[%s %s] Here is the answer: def solve(): return 42" % (who, model)
    if max_tokens:
        text = text[:max(4, int(max_tokens) * 4)]
    return text


def _error_body(provider, status, message, kind):
    """Each provider's documented error shape."""
    if provider == "openrouter":
        return {"error": {"code": status, "message": message, "metadata": {}}}
    if provider == "deepseek":
        return {"error": {"message": message, "type": kind, "param": None,
                          "code": "invalid_request_error"}}
    # Mistral (unverified: object/message/type/param/code as its API returns them)
    return {"object": "error", "message": message, "type": kind, "param": None,
            "code": str(status)}


class _Base(object):
    """A fake server in a background thread, with a request log and a ledger."""

    name = "fake"

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.ledger = []
        self._failures = []
        self._httpd = None
        self.url = None

    def fail_next(self, count, status=429, retry_after=1, message=None, model=None):
        """The next ``count`` chat requests (for ``model`` only, when given) get this error
        (429 with Retry-After by default)."""
        with self.lock:
            self._failures.extend([(status, retry_after, message, model)] * int(count))
        return self

    def clear_failures(self):
        with self.lock:
            self._failures = []

    def _take_failure(self, model=None):
        with self.lock:
            for index, failure in enumerate(self._failures):
                if failure[3] is None or failure[3] == model:
                    return self._failures.pop(index)[:3]
        return None

    def log(self, entry):
        with self.lock:
            self.requests.append(entry)

    def control(self):
        with self.lock:
            return {"requests": list(self.requests), "ledger": list(self.ledger),
                    "balance_usd": getattr(self, "balance", None)}

    def start(self, port=0):
        handler = type("Handler", (self.handler_class,), {"fake": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self._httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


class _Handler(OneWriteHandler):
    fake = None

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def _send(self, status, payload, headers=None, content_type="application/json"):
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, str(value))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

    def _chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


# -- OpenRouter, DeepSeek, Mistral ------------------------------------------------------------
class ApiFake(_Base):
    """One per-token provider. ``models``: {model id: {input_usd_per_mtok,
    output_usd_per_mtok, context, output_tok_s, ttft_s}} (the catalog's api_models)."""

    def __init__(self, provider, models, api_key="sk-test-key", balance_usd=10.0):
        super(ApiFake, self).__init__()
        if provider not in PREFIXES:
            raise ValueError("provider must be one of %s" % sorted(PREFIXES))
        self.name = self.provider = provider
        self.models = dict(models)
        self.api_key = api_key
        self.balance = float(balance_usd)
        self.spent = 0.0
        self.handler_class = _ApiHandler

    @property
    def api_base(self):
        return self.url + PREFIXES[self.provider][0]

    @classmethod
    def from_catalog(cls, provider, catalog, **kwargs):
        models = dict((m.model, {"input_usd_per_mtok": m.input_usd_per_mtok,
                                 "output_usd_per_mtok": m.output_usd_per_mtok,
                                 "context": m.context, "output_tok_s": m.output_tok_s,
                                 "ttft_s": m.ttft_s})
                      for m in catalog.api_models.values() if m.provider == provider)
        return cls(provider, models, **kwargs)

    def charge(self, model, prompt_tokens, completion_tokens):
        """Bill one answer; False (nothing billed) when the balance cannot cover it."""
        price = self.models[model]
        cost = (prompt_tokens * price["input_usd_per_mtok"]
                + completion_tokens * price["output_usd_per_mtok"]) / 1e6
        with self.lock:
            if cost > self.balance + 1e-12:
                return None
            self.balance -= cost
            self.spent += cost
            self.ledger.append({"model": model, "prompt_tokens": prompt_tokens,
                                "completion_tokens": completion_tokens,
                                "cost_usd": round(cost, 10), "at": time.time()})
        return cost


class _ApiHandler(_Handler):

    def _route(self):
        """(prefix-free path) or None when the path is not under one of the API prefixes."""
        path = self.path.split("?")[0].rstrip("/")
        for prefix in sorted(PREFIXES[self.fake.provider], key=len, reverse=True):
            if path.startswith(prefix + "/") or (prefix and path == prefix):
                return path[len(prefix):]
        return None

    def _authorized(self):
        if self.headers.get("Authorization") == "Bearer %s" % self.fake.api_key:
            return True
        provider = self.fake.provider
        message = {"openrouter": "No auth credentials found",
                   "deepseek": "Authentication Fails, Your api key: ****%s is invalid"
                               % (self.headers.get("Authorization") or "")[-4:],
                   "mistral": "Unauthorized"}[provider]
        if provider == "mistral":
            self._send(401, {"message": message, "request_id": uuid.uuid4().hex})
        else:
            self._send(401, _error_body(provider, 401, message, "authentication_error"))
        return False

    def do_GET(self):  # noqa: N802 - http.server's naming
        fake = self.fake
        if self.path.startswith("/_control"):
            self._send(200, fake.control())
            return
        route = self._route() if not self.path.startswith("/user/") else self.path.rstrip("/")
        entry = {"method": "GET", "path": self.path, "status": 200, "at": time.time()}
        fake.log(entry)
        if not self._authorized():
            entry["status"] = 401
            return
        if route == "/models":
            self._send(200, self._models())
        elif fake.provider == "openrouter" and route == "/credits":
            with fake.lock:
                total = fake.balance + fake.spent
                self._send(200, {"data": {"total_credits": round(total, 6),
                                          "total_usage": round(fake.spent, 6)}})
        elif fake.provider == "deepseek" and route == "/user/balance":
            with fake.lock:
                balance = "%.2f" % fake.balance
            self._send(200, {"is_available": fake.balance > 0, "balance_infos": [
                {"currency": "USD", "total_balance": balance, "granted_balance": "0.00",
                 "topped_up_balance": balance}]})
        else:
            entry["status"] = 404
            self._send(404, _error_body(fake.provider, 404, "Not Found", "not_found"))

    def _models(self):
        fake = self.fake
        if fake.provider == "openrouter":
            return {"data": [{"id": mid, "name": mid, "context_length": m["context"],
                              "pricing": {"prompt": "%.12g" % (m["input_usd_per_mtok"] / 1e6),
                                          "completion": "%.12g" % (m["output_usd_per_mtok"] / 1e6)}}
                             for mid, m in sorted(fake.models.items())]}
        owner = "deepseek" if fake.provider == "deepseek" else "mistralai"
        return {"object": "list", "data": [
            {"id": mid, "object": "model", "created": 1700000000, "owned_by": owner}
            for mid in sorted(fake.models)]}

    def do_POST(self):  # noqa: N802
        fake = self.fake
        route = self._route()
        body = self._body()
        entry = {"method": "POST", "path": self.path, "model": (body or {}).get("model"),
                 "stream": bool((body or {}).get("stream")), "at": time.time()}
        fake.log(entry)
        if not self._authorized():
            entry["status"] = 401
            return
        if route != "/chat/completions":
            entry["status"] = 404
            self._send(404, _error_body(fake.provider, 404, "Not Found", "not_found"))
            return
        if body is None or not isinstance(body.get("messages"), list):
            entry["status"] = 400
            self._send(400, _error_body(fake.provider, 400, "messages: field required",
                                        "invalid_request_error"))
            return
        model = body.get("model")
        if model not in fake.models:
            entry["status"] = 400
            message = {"openrouter": "%s is not a valid model ID" % model,
                       "deepseek": "Model Not Exist",
                       "mistral": "Invalid model: %s" % model}[fake.provider]
            kind = "invalid_model" if fake.provider == "mistral" else "invalid_request_error"
            self._send(400, _error_body(fake.provider, 400, message, kind))
            return
        failure = fake._take_failure(model)
        if failure is not None:
            status, retry_after, message = failure
            entry["status"] = status
            default = {429: "Rate limit exceeded", 500: "Internal server error",
                       503: "Service unavailable"}.get(status, "error")
            headers = {"Retry-After": retry_after} if status == 429 and retry_after else {}
            self._send(status, _error_body(fake.provider, status, message or default,
                                           "rate_limit_error" if status == 429 else "server_error"),
                       headers)
            return
        price = fake.models[model]
        prompt_tokens = count_tokens(_prompt_text(body["messages"]))
        text = _answer_text(fake.provider, model, body.get("max_tokens"))
        completion_tokens = count_tokens(text)
        if fake.charge(model, prompt_tokens, completion_tokens) is None:
            entry["status"] = 402
            message = {"openrouter": "Insufficient credits. Add more using "
                                     "https://openrouter.ai/credits",
                       "deepseek": "Insufficient Balance",
                       "mistral": "Insufficient balance (unverified message)"}[fake.provider]
            self._send(402, _error_body(fake.provider, 402, message, "insufficient_quota"))
            return
        entry["status"] = 200
        entry["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens}
        scale = clock_scale()
        time.sleep(price["ttft_s"] / scale)
        ident = "gen-%s" % uuid.uuid4().hex[:16]
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens}
        created = int(time.time())
        if not body.get("stream"):
            time.sleep(completion_tokens / price["output_tok_s"] / scale)
            self._send(200, {"id": ident, "object": "chat.completion", "created": created,
                             "model": model, "usage": usage,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}]})
            return
        self._start_stream("text/event-stream")
        words = text.split(" ")
        per_word = completion_tokens / float(len(words)) / price["output_tok_s"] / scale
        for index, word in enumerate(words):
            piece = word if index == 0 else " " + word
            delta = {"content": piece}
            if index == 0:
                delta["role"] = "assistant"
            self._event({"id": ident, "object": "chat.completion.chunk", "created": created,
                         "model": model, "choices": [{"index": 0, "delta": delta,
                                                      "finish_reason": None}]})
            time.sleep(per_word)
        final = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        # OpenRouter and Mistral always end with usage; DeepSeek when stream_options asks
        if fake.provider != "deepseek" or (body.get("stream_options") or {}).get("include_usage"):
            final["usage"] = usage
        self._event(final)
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()

    def _event(self, payload):
        self._chunk(b"data: " + json.dumps(payload).encode("utf-8") + b"\n\n")


# -- Ollama -----------------------------------------------------------------------------------
class OllamaFake(_Base):
    """Ollama with some pulled tags: {tag: {decode_tok_s, prefill_tok_s, weight_gb}}."""

    name = "ollama"

    def __init__(self, tags):
        super(OllamaFake, self).__init__()
        self.tags = dict(tags)
        self.model_locks = dict((tag, threading.Lock()) for tag in self.tags)
        self.handler_class = _OllamaHandler

    @property
    def api_base(self):
        return self.url

    @classmethod
    def from_catalog(cls, catalog):
        return cls(dict((t.id, {"decode_tok_s": t.decode_tok_s, "prefill_tok_s": t.prefill_tok_s,
                                "weight_gb": t.weight_gb, "quantization": t.quantization})
                        for t in catalog.ollama_models.values()))

    def generate(self, tag, prompt, max_tokens):
        """(text, prompt_tokens, eval_tokens, prompt_ns, eval_ns), at the tag's speed."""
        spec = self.tags[tag]
        text = _answer_text("ollama", tag, max_tokens)
        prompt_tokens, eval_tokens = count_tokens(prompt), count_tokens(text)
        scale = clock_scale()
        prompt_s = prompt_tokens / spec["prefill_tok_s"]
        eval_s = eval_tokens / spec["decode_tok_s"]
        with self.model_locks[tag]:   # one request at a time per model
            time.sleep((prompt_s + eval_s) / scale)
        with self.lock:
            self.ledger.append({"model": tag, "prompt_tokens": prompt_tokens,
                                "completion_tokens": eval_tokens, "cost_usd": 0.0,
                                "at": time.time()})
        return text, prompt_tokens, eval_tokens, int(prompt_s * 1e9), int(eval_s * 1e9)


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _OllamaHandler(_Handler):

    def do_GET(self):  # noqa: N802
        fake = self.fake
        path = self.path.split("?")[0].rstrip("/")
        if path.startswith("/_control"):
            self._send(200, fake.control())
            return
        fake.log({"method": "GET", "path": self.path})
        if path == "/api/tags":
            self._send(200, {"models": [
                {"name": tag, "model": tag, "modified_at": "2026-12-01T00:00:00Z",
                 "size": int(spec.get("weight_gb", 1.0) * 1e9),
                 "digest": uuid.uuid5(uuid.NAMESPACE_URL, tag).hex * 2,
                 "details": {"format": "gguf", "family": tag.split(":")[0],
                             "parameter_size": tag.split(":")[-1].upper(),
                             "quantization_level": str(spec.get("quantization", "q4_k_m")).upper()}}
                for tag, spec in sorted(fake.tags.items())]})
        elif path == "/api/version":
            self._send(200, {"version": "0.12.0"})
        elif path == "/v1/models":
            self._send(200, {"object": "list", "data": [
                {"id": tag, "object": "model", "created": 1700000000, "owned_by": "library"}
                for tag in sorted(fake.tags)]})
        elif path == "":
            self._send(200, b"Ollama is running", content_type="text/plain")
        else:
            self._send(404, b"404 page not found", content_type="text/plain")

    def do_POST(self):  # noqa: N802
        fake = self.fake
        path = self.path.split("?")[0].rstrip("/")
        body = self._body()
        entry = {"method": "POST", "path": self.path, "model": (body or {}).get("model"),
                 "options": (body or {}).get("options"), "at": time.time()}
        fake.log(entry)
        if body is None:
            entry["status"] = 400
            self._send(400, {"error": "invalid character in request body"})
            return
        model = body.get("model")
        if path in ("/api/chat", "/api/generate", "/v1/chat/completions") and model not in fake.tags:
            entry["status"] = 404
            if path.startswith("/v1/"):
                self._send(404, {"error": {"message": "model \"%s\" not found, try pulling it "
                                                      "first" % model,
                                           "type": "api_error", "param": None, "code": None}})
            else:
                self._send(404, {"error": "model \"%s\" not found, try pulling it first" % model})
            return
        failure = fake._take_failure(model)
        if failure is not None:
            status, _retry, message = failure
            entry["status"] = status
            self._send(status, {"error": message or "llama runner process has terminated"})
            return
        entry["status"] = 200
        if path == "/api/chat":
            self._native(body, _prompt_text(body.get("messages")), chat=True)
        elif path == "/api/generate":
            self._native(body, body.get("prompt") or "", chat=False)
        elif path == "/v1/chat/completions":
            self._openai(body)
        else:
            entry["status"] = 404
            self._send(404, b"404 page not found", content_type="text/plain")

    def _native(self, body, prompt, chat):
        model = body["model"]
        options = body.get("options") or {}
        text, ptok, etok, pns, ens = self.fake.generate(model, prompt, options.get("num_predict"))
        final = {"model": model, "created_at": _now(), "done": True, "done_reason": "stop",
                 "total_duration": pns + ens, "load_duration": 0, "prompt_eval_count": ptok,
                 "prompt_eval_duration": pns, "eval_count": etok, "eval_duration": ens}
        if chat:
            final["message"] = {"role": "assistant", "content": "" if body.get("stream", True)
                                else text}
        else:
            final["response"] = "" if body.get("stream", True) else text
        if not body.get("stream", True):   # Ollama streams unless told not to
            self._send(200, final)
            return
        self._start_stream("application/x-ndjson")
        for index, word in enumerate(text.split(" ")):
            piece = word if index == 0 else " " + word
            part = {"model": model, "created_at": _now(), "done": False}
            if chat:
                part["message"] = {"role": "assistant", "content": piece}
            else:
                part["response"] = piece
            self._chunk(json.dumps(part).encode("utf-8") + b"\n")
        self._chunk(json.dumps(final).encode("utf-8") + b"\n")
        self._end_stream()

    def _openai(self, body):
        model = body["model"]
        text, ptok, etok, _pns, _ens = self.fake.generate(
            model, _prompt_text(body.get("messages")), body.get("max_tokens"))
        ident, created = "chatcmpl-%d" % (time.time() * 1000), int(time.time())
        usage = {"prompt_tokens": ptok, "completion_tokens": etok, "total_tokens": ptok + etok}
        if not body.get("stream"):
            self._send(200, {"id": ident, "object": "chat.completion", "created": created,
                             "model": model, "system_fingerprint": "fp_ollama", "usage": usage,
                             "choices": [{"index": 0, "finish_reason": "stop",
                                          "message": {"role": "assistant", "content": text}}]})
            return
        self._start_stream("text/event-stream")
        delta = {"role": "assistant", "content": text}
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
        self._chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        chunk["choices"] = [{"index": 0, "delta": {}, "finish_reason": "stop"}]
        if (body.get("stream_options") or {}).get("include_usage"):
            chunk["usage"] = usage
        self._chunk(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        self._chunk(b"data: [DONE]\n\n")
        self._end_stream()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--provider", required=True,
                        choices=sorted(PREFIXES) + ["ollama"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file")
    parser.add_argument("--api-key", default="sk-test-key")
    parser.add_argument("--balance-usd", type=float, default=10.0)
    parser.add_argument("--catalog", action="append", default=[],
                        help="extra catalog files (the bundled catalog is always read)")
    args = parser.parse_args()
    from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (  # noqa
        load_catalog,
    )
    catalog = load_catalog(args.catalog)
    if args.provider == "ollama":
        fake = OllamaFake.from_catalog(catalog)
    else:
        fake = ApiFake.from_catalog(args.provider, catalog, api_key=args.api_key,
                                    balance_usd=args.balance_usd)
    fake.start(args.port)
    if args.port_file:
        with open(args.port_file, "w") as handle:
            handle.write(fake.url.rsplit(":", 1)[1])
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
