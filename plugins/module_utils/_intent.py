# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The intent pass: a cheap LLM decomposes a blueprint into work per role.

Controller-side only (the ``llmops.codestack.intent`` lookup and the ``intent_estimate``
action plugin call it). The result is one dict (documented in ``docs/intent.md``)::

    {"source": "llm" | "file" | "deterministic", "model": str | None, "reasoning": str,
     "tasks": [{"role", "feature", "title", "complexity", "input_tokens", "output_tokens"}],
     "cost_drivers": [{"feature", "share", "why"}],
     "notes": [str]}          # what validation mapped or clamped; empty when nothing was

Entry points: :func:`validate_intent`, :func:`load_intent_file`, :func:`request_intent`.
Everything raises :class:`IntentError`; nothing here logs or returns the API key.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import os
import re
import time

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - exercised by ansible-test's import sanity
    HAS_YAML = False

from typing import List, Optional, Union

from ansible_collections.llmops.codestack.plugins.module_utils._pydantic import (  # noqa: F401
    HAS_PYDANTIC,
    PYDANTIC_IMPORT_ERROR,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError,
    validate_blueprint,
)

ROLES = ("architect", "coder", "debugger", "reviewer")
COMPLEXITIES = ("low", "medium", "high")
SOURCES = ("llm", "file", "deterministic")
PROJECT_FEATURE = "(project)"

# Validation bounds (docs/intent.md, "Bounds"). They are sanity limits on what one model answer
# may claim, not estimates: anything outside is clamped and reported in ``notes``.
MIN_INPUT_TOKENS = 100          # a task reads at least its own instructions
MAX_INPUT_TOKENS = 2000000      # ~20 agent turns over a 100k-token context
MIN_OUTPUT_TOKENS = 10
MAX_OUTPUT_TOKENS = 200000      # ~15k lines of code written by one task
MAX_TASKS = 200
TASKS_PER_FEATURE = 8           # the schema's maxItems: TASKS_PER_FEATURE x (features + 1)
MAX_TITLE_CHARS = 120
MAX_REASONING_CHARS = 4000
MAX_WHY_CHARS = 300
# Lengths the constrained decoder enforces on small local models (the json_object schema),
# so that a rambling model cannot run to max_tokens inside a string.
GRAMMAR_REASONING_CHARS = 600

DEFAULT_MAX_TOKENS = 4096
TRANSIENT_STATUSES = (429, 502, 503, 504)
STRUCTURED_MODES = ("auto", "json_schema", "json_object", "none")

_ROLE_SYNONYMS = {
    "architect": "architect", "architecture": "architect", "design": "architect",
    "designer": "architect", "planner": "architect", "planning": "architect",
    "coder": "coder", "code": "coder", "coding": "coder", "developer": "coder",
    "dev": "coder", "engineer": "coder", "implementer": "coder", "implementation": "coder",
    "programmer": "coder",
    "debugger": "debugger", "debug": "debugger", "debugging": "debugger", "tester": "debugger",
    "testing": "debugger", "test": "debugger", "qa": "debugger", "fixer": "debugger",
    "reviewer": "reviewer", "review": "reviewer", "code reviewer": "reviewer",
    "codereviewer": "reviewer", "auditor": "reviewer",
}
_COMPLEXITY_SYNONYMS = {
    "low": "low", "easy": "low", "simple": "low", "trivial": "low", "small": "low",
    "medium": "medium", "med": "medium", "moderate": "medium", "mid": "medium",
    "normal": "medium", "average": "medium",
    "high": "high", "hard": "high", "complex": "high", "difficult": "high", "large": "high",
    "very high": "high",
}
_PROJECT_NAMES = ("", "project", "(project)", "all", "general", "global", "overall", "none",
                  "cross-cutting", "crosscutting", "infrastructure", "setup")
_NUMBER = re.compile(r"^([0-9]*\.?[0-9]+)\s*([km]?)$", re.IGNORECASE)


class IntentError(Exception):
    """The intent pass failed. The message names the model (when there is one) and the reason."""

    def __init__(self, message, model=None, problems=None):
        super(IntentError, self).__init__(message)
        self.model = model
        self.problems = problems or []


class InvalidIntent(IntentError):
    """An intent document (model answer or file) does not match the schema."""


def _require_pydantic():
    if not HAS_PYDANTIC:
        raise IntentError("pydantic>=2 is required on the controller for the intent pass "
                          "(pip install -r requirements.txt): %s" % PYDANTIC_IMPORT_ERROR)


def _number(value):
    """Accept what models write for counts: 1200, 1200.0, "1,200", "12k", "1.5M"."""
    if isinstance(value, str):
        text = value.strip().replace(",", "").replace("_", "").replace(" ", "")
        match = _NUMBER.match(text)
        if not match:
            return value
        scale = {"": 1, "k": 1000, "m": 1000000}[match.group(2).lower()]
        return float(match.group(1)) * scale
    return value


if HAS_PYDANTIC:
    class _Loose(BaseModel):
        # Models add fields of their own; they are ignored rather than failing the answer.
        model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    class RawTask(_Loose):
        role: str = Field(min_length=1)
        feature: Optional[str] = None
        title: str = ""
        complexity: str = "medium"
        input_tokens: float
        output_tokens: float

        @field_validator("input_tokens", "output_tokens", mode="before")
        @classmethod
        def _tokens(cls, value):
            return _number(value)

        @field_validator("title", "complexity", mode="before")
        @classmethod
        def _text(cls, value):
            return "" if value is None else value

    class RawDriver(_Loose):
        feature: Optional[str] = None
        share: float
        why: str = ""

        @field_validator("share", mode="before")
        @classmethod
        def _share(cls, value):
            if isinstance(value, str) and value.strip().endswith("%"):
                return float(value.strip()[:-1]) / 100.0
            return _number(value)

        @field_validator("why", mode="before")
        @classmethod
        def _why(cls, value):
            return "" if value is None else value

    class RawIntent(_Loose):
        reasoning: Union[str, List[str]] = ""
        tasks: List[RawTask] = Field(min_length=1)
        cost_drivers: List[RawDriver] = Field(default_factory=list)
        source: Optional[str] = None
        model: Optional[str] = None

        @field_validator("reasoning", mode="before")
        @classmethod
        def _no_reasoning(cls, value):
            return "" if value is None else value

        @field_validator("cost_drivers", mode="before")
        @classmethod
        def _no_drivers(cls, value):
            return [] if value is None else value


def _loc(loc):
    out = ""
    for part in loc:
        out += "[%d]" % part if isinstance(part, int) else ("." if out else "") + str(part)
    return out or "(top level)"


def _problems_from(exc, limit=6):
    problems = []
    for err in exc.errors()[:limit]:
        got = err.get("input")
        got_text = "" if isinstance(got, (dict, list)) or err.get("type") == "missing" \
            else " (got %s)" % json.dumps(got, default=str)[:60]
        problems.append("%s: %s%s" % (_loc(err.get("loc", ())), err.get("msg"), got_text))
    if len(exc.errors()) > limit:
        problems.append("... and %d more" % (len(exc.errors()) - limit))
    return problems


def _as_blueprint(blueprint):
    """Accept a validated ``Blueprint`` or a mapping; return the ``Blueprint``."""
    if hasattr(blueprint, "features") and hasattr(blueprint, "project"):
        return blueprint
    try:
        return validate_blueprint(blueprint)
    except BlueprintError as exc:
        raise IntentError(str(exc))


def _key(text):
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _clamp(value, low, high, what, notes):
    if math.isnan(value):
        notes.append("%s NaN raised to the minimum %d" % (what, low))
        return low
    number = value if value in (float("inf"), float("-inf")) else int(round(value))
    if number < low:
        notes.append("%s %s raised to the minimum %d" % (what, _fmt(value), low))
        return low
    if number > high:
        notes.append("%s %s lowered to the maximum %d" % (what, _fmt(value), high))
        return high
    return number


def _fmt(value):
    if math.isnan(value):
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "%s" % value
    return "%d" % value if abs(value) < 1e15 and float(value).is_integer() else "%g" % value


def _truncate(text, limit, what, notes):
    if len(text) > limit:
        notes.append("%s shortened from %d to %d characters" % (what, len(text), limit))
        return text[:limit - 1].rstrip() + "\u2026"
    return text


def _feature_mapper(bp):
    names = [f.name for f in bp.features]
    by_key = dict((_key(n), n) for n in names)

    def resolve(raw, where, notes):
        text = (raw or "").strip()
        if text in names:
            return text
        if text.lower() in _PROJECT_NAMES:
            if text != PROJECT_FEATURE:
                notes.append("%s: feature %r read as %s" % (where, raw, PROJECT_FEATURE))
            return PROJECT_FEATURE
        if _key(text) in by_key:
            name = by_key[_key(text)]
            notes.append("%s: feature %r mapped to blueprint feature %r" % (where, raw, name))
            return name
        return None
    return resolve


def validate_intent(data, blueprint, source=None, model=None):
    """Validate and normalise an intent document against the blueprint.

    Structure and types are checked with pydantic; an unknown role or complexity, a missing
    field or an empty task list raises :class:`InvalidIntent` listing the problems (the LLM
    path sends them back to the model once). Feature names are matched to the blueprint
    (case and punctuation ignored); a name that matches nothing is counted as ``(project)``
    work. Token counts, the number of tasks, shares and text lengths are clamped to the
    documented bounds; every mapping or clamp is described in ``notes``.
    """
    _require_pydantic()
    bp = _as_blueprint(blueprint)
    if not isinstance(data, dict):
        raise InvalidIntent("the intent must be a JSON object with reasoning, tasks and "
                            "cost_drivers; got %s" % type(data).__name__,
                            problems=["(top level): expected an object"])
    try:
        raw = RawIntent.model_validate(data)
    except ValidationError as exc:
        problems = _problems_from(exc)
        raise InvalidIntent("the intent does not match the schema: %s" % "; ".join(problems),
                            problems=problems)

    notes = []
    problems = []
    resolve = _feature_mapper(bp)
    if len(raw.tasks) > MAX_TASKS:
        notes.append("%d tasks given; only the first %d kept" % (len(raw.tasks), MAX_TASKS))
    tasks = []
    for index, item in enumerate(raw.tasks[:MAX_TASKS]):
        where = "tasks[%d]" % index
        role = _ROLE_SYNONYMS.get(item.role.lower().strip())
        if role is None:
            problems.append("%s.role: %r is not one of %s" % (where, item.role, ", ".join(ROLES)))
        elif role != item.role:
            notes.append("%s: role %r read as %r" % (where, item.role, role))
        complexity = _COMPLEXITY_SYNONYMS.get(item.complexity.lower().strip() or "medium")
        if complexity is None:
            problems.append("%s.complexity: %r is not one of %s"
                            % (where, item.complexity, ", ".join(COMPLEXITIES)))
        feature = resolve(item.feature, where, notes)
        if feature is None:
            notes.append("%s: feature %r is not in the blueprint; counted as %s"
                         % (where, item.feature, PROJECT_FEATURE))
            feature = PROJECT_FEATURE
        title = item.title or "%s work on %s" % (role or item.role, feature)
        tasks.append({
            "role": role,
            "feature": feature,
            "title": _truncate(title, MAX_TITLE_CHARS, where + ".title", notes),
            "complexity": complexity,
            "input_tokens": _clamp(item.input_tokens, MIN_INPUT_TOKENS, MAX_INPUT_TOKENS,
                                   where + ".input_tokens", notes),
            "output_tokens": _clamp(item.output_tokens, MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS,
                                    where + ".output_tokens", notes),
        })
    if problems:
        raise InvalidIntent("the intent does not match the schema: %s" % "; ".join(problems),
                            problems=problems)

    drivers = _drivers(raw.cost_drivers, tasks, resolve, notes)
    covered = set(t["feature"] for t in tasks)
    missing = [f.name for f in bp.features if f.name not in covered]
    if missing:
        notes.append("no task for blueprint feature(s): %s" % ", ".join(missing))

    reasoning = raw.reasoning if isinstance(raw.reasoning, str) else "\n".join(raw.reasoning)
    chosen_source = source or raw.source or "file"
    if chosen_source not in SOURCES:
        raise InvalidIntent("intent source %r is not one of %s" % (chosen_source, ", ".join(SOURCES)),
                            problems=["source: not one of %s" % ", ".join(SOURCES)])
    return {
        "source": chosen_source,
        "model": model if model is not None else raw.model,
        "reasoning": _truncate(reasoning.strip(), MAX_REASONING_CHARS, "reasoning", notes),
        "tasks": tasks,
        "cost_drivers": drivers,
        "notes": notes,
    }


def _drivers(raw_drivers, tasks, resolve, notes):
    merged = {}
    order = []
    for index, item in enumerate(raw_drivers):
        where = "cost_drivers[%d]" % index
        feature = resolve(item.feature, where, notes)
        if feature is None:
            notes.append("%s: feature %r is not in the blueprint; dropped" % (where, item.feature))
            continue
        share = item.share
        if math.isnan(share) or share < 0 or share > 1:
            # "40" most likely means 40 %.
            fixed = share / 100.0 if 1 < share <= 100 else (0.0 if math.isnan(share) or share < 0
                                                            else 1.0)
            notes.append("%s.share %s clamped to %.2f" % (where, _fmt(share), fixed))
            share = fixed
        if feature in merged:
            merged[feature]["share"] += share
            if item.why and not merged[feature]["why"]:
                merged[feature]["why"] = item.why
            continue
        order.append(feature)
        merged[feature] = {"feature": feature, "share": share,
                           "why": _truncate(item.why, MAX_WHY_CHARS, where + ".why", notes)}
    if not merged:
        return _drivers_from_tasks(tasks, notes)
    total = sum(d["share"] for d in merged.values())
    if total > 1.0 + 1e-6 or total <= 0:
        if total > 0:
            notes.append("cost driver shares summed to %.2f; scaled to sum to 1" % total)
            for entry in merged.values():
                entry["share"] = entry["share"] / total
        else:
            return _drivers_from_tasks(tasks, notes)
    result = [merged[f] for f in order]
    for entry in result:
        entry["share"] = round(min(1.0, max(0.0, entry["share"])), 4)
    return sorted(result, key=lambda d: -d["share"])


def _drivers_from_tasks(tasks, notes):
    """Shares of the token volume per feature, for answers that name no cost driver."""
    volume = {}
    for task in tasks:
        # Output tokens are priced and generated more slowly than input ones: weight them x4.
        volume[task["feature"]] = volume.get(task["feature"], 0) + task["input_tokens"] \
            + 4 * task["output_tokens"]
    total = float(sum(volume.values())) or 1.0
    notes.append("cost drivers derived from the task token estimates")
    return sorted(({"feature": f, "share": round(v / total, 4),
                    "why": "share of the estimated token volume"} for f, v in volume.items()),
                  key=lambda d: -d["share"])


def load_intent_file(path, blueprint):
    """Read an intent document from a JSON or YAML file (for example a previous plan.json's
    ``intent``, or a whole plan.json) and validate it. The result's source is ``file``."""
    try:
        with open(path, "r") as handle:
            text = handle.read()
    except (IOError, OSError) as exc:
        raise IntentError("cannot read intent file %s: %s" % (path, exc.strerror or exc))
    try:
        data = json.loads(text)
    except ValueError:
        if not HAS_YAML:
            raise IntentError("intent file %s is not JSON (PyYAML is needed for YAML)" % path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise IntentError("intent file %s is neither JSON nor YAML: %s"
                              % (path, re.sub(r"\s+", " ", str(exc))))
    if isinstance(data, dict) and "tasks" not in data and isinstance(data.get("intent"), dict):
        data = data["intent"]  # a whole plan.json
    try:
        result = validate_intent(data, blueprint, source="file")
    except InvalidIntent as exc:
        raise IntentError("intent file %s: %s" % (path, exc), problems=exc.problems)
    if result["model"] is None and isinstance(data, dict):
        result["model"] = data.get("model")
    return result


# ---------------------------------------------------------------------------------------------
# Extracting the JSON answer after the chain of thought
# ---------------------------------------------------------------------------------------------

_THINK = re.compile(r"<(think|thinking|reasoning)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)


def extract_json(text):
    """Return ``(obj, preamble)``: the JSON object answering the request and the text before it.

    The model thinks first and answers last, so the *last* top-level JSON object wins, and one
    holding ``tasks`` beats any other (models sometimes quote a fragment while thinking).
    ``<think>`` blocks and Markdown fences are handled. Raises ``InvalidIntent`` with the
    reason when there is no complete object (typically an answer cut off at ``max_tokens``).
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidIntent("the answer is empty", problems=["the answer is empty"])
    thoughts = " ".join(m.group(2).strip() for m in _THINK.finditer(text))
    body = _THINK.sub("", text)
    decoder = json.JSONDecoder()
    found = []
    last_error = None
    covered = -1
    for match in re.finditer(r"\{", body):
        start = match.start()
        if start < covered:
            continue
        try:
            obj, end = decoder.raw_decode(body, start)
        except ValueError as exc:
            last_error = (start, exc)
            continue
        if isinstance(obj, dict):
            found.append((start, obj))
            covered = end
    with_tasks = [item for item in found if "tasks" in item[1]]
    chosen = (with_tasks or found or [None])[-1]
    if chosen is None:
        if last_error is not None:
            reason = "the JSON answer is incomplete or malformed (%s)" % last_error[1].msg
        else:
            reason = "no JSON object found in the answer"
        raise InvalidIntent(reason, problems=[reason])
    preamble = body[:chosen[0]]
    preamble = re.sub(r"```[a-zA-Z]*\s*$", "", preamble.rstrip()).strip()
    return chosen[1], (thoughts + "\n" + preamble).strip()


# ---------------------------------------------------------------------------------------------
# The LLM call
# ---------------------------------------------------------------------------------------------

def default_prompts_dir():
    return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                         os.pardir, os.pardir, "prompts"))


def load_prompt(name, prompts_dir=None):
    """Text of ``prompts/<name>.md`` (the collection's, or ``prompts_dir``'s)."""
    path = os.path.join(prompts_dir or default_prompts_dir(), name + ".md")
    try:
        with open(path, "r") as handle:
            return handle.read().strip()
    except (IOError, OSError) as exc:
        raise IntentError("cannot read prompt %s: %s" % (path, exc.strerror or exc))


def response_schema(blueprint, grammar=False):
    """JSON schema of the answer for this blueprint (feature names as an enum).

    ``grammar=True`` adds string and item limits for constrained decoders (llama.cpp) that
    turn the schema into a grammar; OpenAI's strict mode rejects ``maxLength``, so the
    ``json_schema`` variant leaves them out.
    """
    bp = _as_blueprint(blueprint)
    features = [f.name for f in bp.features] + [PROJECT_FEATURE]
    max_tasks = min(MAX_TASKS, TASKS_PER_FEATURE * len(features))
    title = {"type": "string"}
    reasoning = {"type": "string"}
    why = {"type": "string"}
    if grammar:
        title["maxLength"] = MAX_TITLE_CHARS
        reasoning["maxLength"] = GRAMMAR_REASONING_CHARS
        why["maxLength"] = 160
    task = {
        "type": "object",
        "properties": {
            "role": {"type": "string", "enum": list(ROLES)},
            "feature": {"type": "string", "enum": features},
            "title": title,
            "complexity": {"type": "string", "enum": list(COMPLEXITIES)},
            "input_tokens": {"type": "integer"},
            "output_tokens": {"type": "integer"},
        },
        "required": ["role", "feature", "title", "complexity", "input_tokens", "output_tokens"],
        "additionalProperties": False,
    }
    driver = {
        "type": "object",
        "properties": {
            "feature": {"type": "string", "enum": features},
            "share": {"type": "number"},
            "why": why,
        },
        "required": ["feature", "share", "why"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {
            "reasoning": reasoning,
            "tasks": {"type": "array", "items": task, "minItems": 1, "maxItems": max_tasks},
            "cost_drivers": {"type": "array", "items": driver, "maxItems": len(features)},
        },
        "required": ["reasoning", "tasks", "cost_drivers"],
        "additionalProperties": False,
    }


def render_request(blueprint):
    """The user message: the blueprint and the bounds the answer must respect."""
    bp = _as_blueprint(blueprint)
    data = bp.model_dump(mode="json", exclude_none=True) if hasattr(bp, "model_dump") else bp
    constraints = dict(data.get("constraints", {}))
    lines = [
        "Blueprint to decompose:",
        "```json",
        json.dumps({"project": data.get("project"), "features": data.get("features"),
                    "quality": constraints.get("quality"),
                    "deadline_hours": constraints.get("deadline_hours")}, indent=2),
        "```",
        "",
        "Allowed feature names: %s, plus \"%s\" for work that belongs to no single feature."
        % (", ".join(json.dumps(f.name) for f in bp.features), PROJECT_FEATURE),
        "Allowed roles: %s." % ", ".join(ROLES),
        "Bounds per task: input_tokens %d..%d, output_tokens %d..%d; at most %d tasks."
        % (MIN_INPUT_TOKENS, MAX_INPUT_TOKENS, MIN_OUTPUT_TOKENS, MAX_OUTPUT_TOKENS,
           min(MAX_TASKS, TASKS_PER_FEATURE * (len(bp.features) + 1))),
        "Think first, then end with the JSON object.",
    ]
    return "\n".join(lines)


def _redact(text, secret):
    text = str(text)
    if secret:
        text = text.replace(secret, "***")
    # Keys that providers echo back in error bodies.
    return re.sub(r"\bsk-[A-Za-z0-9_\-]{6,}", "sk-***", text)


def _status(exc):
    for attr in ("status_code", "status", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    return None


def _rejects_response_format(exc):
    """True when the server refused the response_format we sent (not any other failure).

    llama-cpp-python's server answers ``json_schema`` with HTTP 500 and a pydantic message
    naming ``response_format``; LiteLLM raises ``UnsupportedParamsError`` (400) naming it for
    providers without structured output.
    """
    text = str(exc).lower()
    named = "response_format" in text or "json_schema" in text or "json_object" in text
    return named and (_status(exc) in (400, 415, 422, 500, 501) or
                      type(exc).__name__ == "UnsupportedParamsError")


def _is_transient(exc):
    if _status(exc) in TRANSIENT_STATUSES:
        return True
    return type(exc).__name__ in ("APIConnectionError", "ServiceUnavailableError",
                                  "RateLimitError")


def _describe(exc):
    name = type(exc).__name__
    text = re.sub(r"\s+", " ", str(exc)).strip()
    if name == "Timeout" or "timed out" in text.lower():
        return "no answer within the timeout (%s)" % text[:300]
    status = _status(exc)
    prefix = "HTTP %s, " % status if status else ""
    return "%s%s: %s" % (prefix, name, text[:500])


def _message_parts(response):
    """(content, reasoning_content, finish_reason) of the first choice, dicts or objects."""
    choices = response["choices"] if isinstance(response, dict) else response.choices
    choice = choices[0]
    message = choice["message"] if isinstance(choice, dict) else choice.message
    finish = choice.get("finish_reason") if isinstance(choice, dict) else \
        getattr(choice, "finish_reason", None)

    def get(key):
        if isinstance(message, dict):
            return message.get(key)
        return getattr(message, key, None)
    return get("content") or "", get("reasoning_content") or "", finish


def _litellm_completion():
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise IntentError("the LiteLLM SDK is required for the intent pass "
                          "(pip install -r requirements.txt): %s" % exc)
    litellm.suppress_debug_info = True
    return litellm.completion


def _response_format(mode, blueprint):
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "codestack_intent", "strict": True,
                                "schema": response_schema(blueprint)}}
    if mode == "json_object":
        return {"type": "json_object", "schema": response_schema(blueprint, grammar=True)}
    return None


def request_intent(blueprint, model, api_base=None, api_key=None, timeout=60, prompts_dir=None,
                   structured="auto", completion_fn=None, sleep=time.sleep,
                   transient_retries=2, **litellm_kwargs):
    """Ask the intent model to decompose the blueprint; return the validated intent dict.

    The call goes through ``litellm.completion`` (``completion_fn`` replaces it in tests), so
    ``model`` is any LiteLLM model string: ``litellm_proxy/intent`` or ``openai/intent`` with
    ``api_base`` for a LiteLLM proxy, or a provider model. ``structured`` picks how the JSON
    schema is enforced: ``json_schema`` (OpenAI style), ``json_object`` (``{"type":
    "json_object", "schema": ...}``, what llama-cpp-python's server accepts), ``none`` (prompt
    only) or ``auto``: ``json_schema`` first, stepping down to the next only when the server
    rejects the response_format itself. An invalid answer is sent back to the model once with
    the list of problems; a second invalid answer, or any call failure, raises
    :class:`IntentError` naming the model and the reason. 429/502/503/504 and connection errors
    are retried ``transient_retries`` times with backoff.
    """
    _require_pydantic()
    if not model or not isinstance(model, str):
        raise IntentError("no intent model given: set a LiteLLM model name such as "
                          "'litellm_proxy/intent' (with api_base) or use an intent file")
    if structured not in STRUCTURED_MODES:
        raise IntentError("structured must be one of %s, not %r"
                          % (", ".join(STRUCTURED_MODES), structured))
    bp = _as_blueprint(blueprint)
    completion = completion_fn or _litellm_completion()
    messages = [{"role": "system", "content": load_prompt("intent", prompts_dir)},
                {"role": "user", "content": render_request(bp)}]
    call = dict(litellm_kwargs)
    call.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
    # Transient failures are retried below, with the response_format step-down in mind; the
    # OpenAI client's own retries would repeat a rejected response_format three times.
    call.setdefault("max_retries", 0)
    call["model"] = model
    call["timeout"] = timeout
    if api_base:
        call["api_base"] = api_base
    if api_key:
        call["api_key"] = api_key

    ladder = ["json_schema", "json_object", "none"] if structured == "auto" else [structured]
    state = {"mode": 0}
    notes = []

    def fail(reason, problems=None):
        return IntentError("intent model '%s' failed: %s" % (model, _redact(reason, api_key)),
                           model=model, problems=problems)

    def ask(msgs):
        transient = 0
        while True:
            mode = ladder[state["mode"]]
            fmt = _response_format(mode, bp)
            kwargs = dict(call, messages=msgs)
            if fmt is not None:
                kwargs["response_format"] = fmt
            try:
                return completion(**kwargs)
            # Every LiteLLM/provider exception becomes an IntentError naming the model.
            except Exception as exc:  # pylint: disable=broad-except
                if _rejects_response_format(exc) and state["mode"] + 1 < len(ladder):
                    notes.append("the server rejected response_format %s (%s); used %s"
                                 % (mode, "HTTP %s" % _status(exc) if _status(exc)
                                    else type(exc).__name__, ladder[state["mode"] + 1]))
                    state["mode"] += 1
                    continue
                if _is_transient(exc) and transient < transient_retries:
                    transient += 1
                    sleep(2 ** (transient - 1))
                    continue
                raise fail(_describe(exc))

    first_problem = None
    for attempt in (1, 2):
        response = ask(messages)
        try:
            content, thought, finish = _message_parts(response)
        except (AttributeError, IndexError, KeyError, TypeError) as exc:
            raise fail("the response has no message (%s)" % exc)
        try:
            data, preamble = extract_json(content)
            result = validate_intent(data, bp, source="llm", model=model)
        except InvalidIntent as exc:
            problems = list(exc.problems or [str(exc)])
            if finish == "length":
                problems.insert(0, "the answer was cut off at max_tokens=%s"
                                % call.get("max_tokens"))
            if attempt == 2:
                raise fail("invalid output twice; first: %s; then: %s"
                           % (first_problem, "; ".join(problems)), problems=problems)
            first_problem = "; ".join(problems)
            messages = messages + [
                {"role": "assistant", "content": content[-6000:]},
                {"role": "user", "content": _feedback(problems)},
            ]
            continue
        if not result["reasoning"]:
            result["reasoning"] = _truncate((thought + "\n" + preamble).strip(),
                                            MAX_REASONING_CHARS, "reasoning", result["notes"])
        if first_problem:
            notes.append("the first answer was invalid (%s); the retry was valid"
                         % first_problem[:300])
        result["notes"] = notes + result["notes"]
        return result
    raise fail("no answer")  # pragma: no cover - the loop returns or raises


def _feedback(problems):
    return ("Your answer could not be used:\n- %s\n\nAnswer again: think briefly, then end with "
            "one JSON object with the keys reasoning, tasks and cost_drivers, using only the "
            "allowed roles, feature names and complexities." % "\n- ".join(problems))
