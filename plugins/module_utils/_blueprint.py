# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blueprint: what to build, with which budget, delay and quality.

Validated with pydantic on the controller. Every error becomes one ``BlueprintError`` whose
message names the field and the fix, raised before anything else runs. The schema is
documented in ``docs/blueprint.md``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import difflib
import re

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

from typing import Dict, List, Literal, Optional

from ansible_collections.llmops.codestack.plugins.module_utils._pydantic import (  # noqa: F401
    HAS_PYDANTIC,
    PYDANTIC_IMPORT_ERROR,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

PROVIDERS = ("local", "runpod", "runpod_serverless", "vast", "hetzner", "exoscale", "kubernetes",
             "openrouter", "deepseek", "mistral", "ollama")
TIERS = ("economy", "standard", "premium")
QUALITIES = ("draft", "standard", "high")
PRIORITIES = ("must", "should", "could")
COMPLEXITIES = ("low", "medium", "high")
IDES = ("code-server-kilocode", "none")

_FIXES = {
    "missing": "add it",
    "extra_forbidden": "remove it or check its spelling",
    "literal_error": "use one of the allowed values",
    "greater_than": "use a positive number",
    "greater_than_equal": "use a number of zero or more",
    "string_too_short": "give a non-empty value",
    "string_pattern_mismatch": "use lowercase letters, digits and dashes",
}


class BlueprintError(Exception):
    """The blueprint cannot be used. ``field`` is its dotted path, ``fix`` what to do."""

    def __init__(self, message, field=None, fix=None):
        super(BlueprintError, self).__init__(message)
        self.field = field
        self.fix = fix
        self.problems = [(field, message)]


if HAS_PYDANTIC:
    class _Strict(BaseModel):
        model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    class Project(_Strict):
        name: str = Field(min_length=1, max_length=40, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$",
                          description="Stack name, used in resource names and labels.")
        description: str = Field(min_length=1, description="What the software does.")

    class Feature(_Strict):
        name: str = Field(min_length=1)
        description: str = Field(min_length=1)
        priority: Literal["must", "should", "could"] = "must"
        complexity: Optional[Literal["low", "medium", "high"]] = None
        sensitive: bool = Field(default=False, description="Its work stays on local or "
                                "self-hosted models (never a third-party API).")

    class RoleScaling(_Strict):
        idle_timeout_s: Optional[int] = Field(default=None, ge=0, description="Seconds without "
                                              "requests before the deployment is stopped.")
        wake_policy: Optional[Literal["wait", "fallback"]] = None

    class RolesScaling(_Strict):
        architect: Optional[RoleScaling] = None
        coder: Optional[RoleScaling] = None
        debugger: Optional[RoleScaling] = None
        reviewer: Optional[RoleScaling] = None

    class Usage(_Strict):
        """How the developers use the stack: what the number of wakes is priced from."""
        sessions_per_day: float = Field(default=3.0, gt=0)
        session_hours: float = Field(default=2.5, gt=0)
        working_days_per_week: float = Field(default=5.0, gt=0, le=7)

    class Constraints(_Strict):
        budget_usd: Optional[float] = Field(default=None, gt=0)
        budget_eur: Optional[float] = Field(default=None, gt=0)
        deadline_hours: float = Field(gt=0)
        quality: Literal["draft", "standard", "high"] = "standard"
        providers: List[Literal["local", "runpod", "runpod_serverless", "vast", "hetzner",
                                "exoscale", "kubernetes", "openrouter", "deepseek", "mistral",
                                "ollama"]] = Field(default_factory=lambda: ["local"],
                                                   min_length=1)
        sensitive: bool = Field(default=False, description="All work stays on local or "
                                "self-hosted models (never a third-party API).")
        tiers: Dict[Literal["architect", "coder", "debugger", "reviewer"],
                    Literal["economy", "standard", "premium"]] = Field(
            default_factory=dict, description="Budget tier per role (default standard).")
        region: Optional[str] = None
        residency: Optional[str] = Field(default=None, description="e.g. 'eu': only offers "
                                         "located there are considered.")
        scaling: Optional[RolesScaling] = None

        @model_validator(mode="after")
        def _one_budget(self):
            if (self.budget_usd is None) == (self.budget_eur is None):
                raise ValueError("give exactly one of budget_usd or budget_eur")
            return self

    class Blueprint(_Strict):
        schema_version: Literal[1] = 1
        project: Project
        features: List[Feature] = Field(min_length=1)
        constraints: Constraints
        usage: Usage = Field(default_factory=Usage)
        ide: Literal["code-server-kilocode", "none"] = "code-server-kilocode"

        @model_validator(mode="after")
        def _unique_features(self):
            seen = set()
            for feature in self.features:
                if feature.name in seen:
                    raise ValueError("feature names must be unique: '%s' appears twice"
                                     % feature.name)
                seen.add(feature.name)
            return self


def _field_path(loc):
    parts = []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = "%s[%d]" % (parts[-1], item) if parts else "[%d]" % item
        else:
            parts.append(str(item))
    return ".".join(parts) or "(top level)"


def _allowed_keys(loc):
    """The keys allowed where an unknown key ``loc`` sits (for a did-you-mean)."""
    model = Blueprint
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        inner = {"project": Project, "features": Feature, "constraints": Constraints,
                 "usage": Usage, "scaling": RolesScaling, "architect": RoleScaling,
                 "coder": RoleScaling, "debugger": RoleScaling, "reviewer": RoleScaling}.get(part)
        if inner is None:
            return []
        model = inner
    return sorted(model.model_fields)


def _problem(err):
    """(field, text, fix) of one pydantic error."""
    loc = [p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-"))]
    field = _field_path(loc)
    kind = err.get("type", "")
    message = err.get("msg", "invalid value")
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    fix = _FIXES.get(kind)
    if kind == "literal_error" and "expected" in err.get("ctx", {}):
        fix = "use one of %s" % err["ctx"]["expected"]
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        fix = "give a value of the right type"
    elif kind == "extra_forbidden" and loc:
        close = difflib.get_close_matches(str(loc[-1]), _allowed_keys(loc), n=1)
        fix = ("did you mean '%s'? remove it or rename it" % close[0]) if close else \
            "remove it (allowed here: %s)" % ", ".join(_allowed_keys(loc))
    got = err.get("input")
    got_text = "" if kind == "missing" or isinstance(got, (dict, list)) else " (got %r)" % (got,)
    text = "blueprint field '%s': %s%s" % (field, message, got_text)
    if fix:
        text += "; fix: %s" % fix
    return field, text, fix


def _all_messages(exc):
    """One BlueprintError listing every problem, one per line; ``field``/``fix`` are the
    first one's, ``problems`` all (field, message) pairs."""
    problems = [_problem(err) for err in exc.errors()]
    field, text, fix = problems[0]
    if len(problems) > 1:
        text = "\n".join(p[1] for p in problems) + "\n(%d problems in all)" % len(problems)
    error = BlueprintError(text, field=field, fix=fix)
    error.problems = [(p[0], p[1]) for p in problems]
    return error


def validate_blueprint(data):
    """Validate a mapping; return the ``Blueprint`` or raise one ``BlueprintError``."""
    if not HAS_PYDANTIC:
        raise BlueprintError("pydantic>=2 is required on the controller to validate blueprints "
                             "(pip install -r requirements.txt): %s" % PYDANTIC_IMPORT_ERROR)
    if not isinstance(data, dict):
        raise BlueprintError("blueprint must be a YAML mapping with project, features and "
                             "constraints; got %s" % type(data).__name__, field="(top level)",
                             fix="start the file with 'project:'")
    try:
        return Blueprint.model_validate(data)
    except ValidationError as exc:
        raise _all_messages(exc)


def load_blueprint(path):
    """Read and validate a blueprint file."""
    if not HAS_YAML:
        raise BlueprintError("PyYAML is required to read blueprints")
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except UnicodeDecodeError as exc:
        raise BlueprintError("blueprint file %s is not UTF-8 text: byte 0x%02x at offset %d "
                             "cannot be decoded" % (path, exc.object[exc.start], exc.start),
                             field="blueprint", fix="save the file as UTF-8")
    except (IOError, OSError) as exc:
        raise BlueprintError("cannot read blueprint file %s: %s" % (path, exc.strerror or exc),
                             field="blueprint", fix="pass -e blueprint=PATH to a readable file")
    except yaml.YAMLError as exc:
        raise BlueprintError("blueprint file %s is not valid YAML: %s"
                             % (path, re.sub(r"\s+", " ", str(exc))), field="blueprint",
                             fix="fix the YAML syntax")
    return validate_blueprint(data)
