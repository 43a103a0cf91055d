# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What AWX and Semaphore check when they read extras/: shared by the unit and integration tests.

The AWX rules follow ``JobTemplateSurveySpec._validate_spec_data`` (awx/api/views, the POST of
/api/v2/job_templates/N/survey_spec/) and the launch-time defaults of
``SurveyJobTemplateMixin._update_unified_job_kwargs`` (awx/main/models/mixins.py); the Semaphore
rules follow ``db/Template.go`` (SurveyVar), ``db/Environment.go`` (Validate) and
``services/project/restore.go`` (names resolved on restore).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import keyword
import os
import re

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
AWX_EXPORT = os.path.join(REPO, "extras", "awx", "codestack.json")
SEMAPHORE_PROJECT = os.path.join(REPO, "extras", "semaphore", "codestack-project.json")
SEMAPHORE_ENVIRONMENT = os.path.join(REPO, "extras", "semaphore", "environment.json")

# awxkit/api/pages/api.py EXPORTABLE_RESOURCES: the keys `awx import` reads.
AWX_RESOURCES = ("users", "organizations", "teams", "credential_types", "credentials",
                 "notification_templates", "projects", "inventory", "inventory_sources",
                 "job_templates", "workflow_job_templates", "execution_environments",
                 "applications", "schedules")
AWX_QUESTION_TYPES = {"text": str, "textarea": str, "password": str, "multiplechoice": str,
                      "multiselect": str, "integer": int, "float": float}
SEMAPHORE_VAR_TYPES = ("", "int", "secret", "enum", "text")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load(path):
    with open(path) as handle:
        return json.load(handle)


def is_variable_name(name):
    return bool(IDENTIFIER.match(name or "")) and not keyword.iskeyword(name)


def awx_survey_errors(survey):
    """The reasons AWX would answer 400 to this survey_spec, plus our own: valid variable names."""
    errors = []
    for field, kind in (("name", str), ("description", str), ("spec", list)):
        if not isinstance(survey.get(field), kind):
            errors.append("field %r missing or not %s" % (field, kind.__name__))
    if errors:
        return errors
    if not survey["spec"]:
        errors.append("'spec' doesn't contain any items")
    seen = set()
    for idx, item in enumerate(survey["spec"]):
        where = "question %d (%s)" % (idx, item.get("variable"))
        for field in ("type", "question_name", "variable", "required"):
            expected = bool if field == "required" else str
            if not isinstance(item.get(field), expected):
                errors.append("%s: %r missing or not %s" % (where, field, expected.__name__))
        if errors:
            continue
        if not is_variable_name(item["variable"]):
            errors.append("%s: variable is not a valid Ansible variable name" % where)
        if item["variable"] in seen:
            errors.append("%s: variable duplicated" % where)
        seen.add(item["variable"])
        qtype = item["type"]
        if qtype not in AWX_QUESTION_TYPES:
            errors.append("%s: type %r not allowed" % (where, qtype))
            continue
        default = item.get("default")
        if "default" in item and default != "" and not isinstance(default, AWX_QUESTION_TYPES[qtype]):
            errors.append("%s: default %r is not %s" % (where, default, qtype))
        for key in ("min", "max"):
            if item.get(key) is not None and not isinstance(item[key], int):
                errors.append("%s: %s must be an integer" % (where, key))
        if qtype in ("multiplechoice", "multiselect"):
            choices = item.get("choices")
            if isinstance(choices, str):
                choices = [c for c in choices.splitlines() if c.strip()]
            if not choices:
                errors.append("%s: %s must specify choices" % (where, qtype))
                continue
            defaults = default.splitlines() if isinstance(default, str) else (default or [])
            if qtype == "multiplechoice" and len(defaults) > 1:
                errors.append("%s: multiple choice can only have one default" % where)
            if any(d not in choices for d in defaults):
                errors.append("%s: default must be one of the choices" % where)
        if isinstance(default, str) and default.startswith("$encrypted$"):
            errors.append("%s: $encrypted$ is reserved" % where)
    return errors


def awx_answer_errors(item, value):
    """AWX's per-question check of an answer (``_survey_element_validation``)."""
    qtype, name = item["type"], item["variable"]
    if item["required"] and value in ("", None):
        return ["%s was required" % name]
    if value in ("", None):
        return []
    if qtype in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return ["%s must be a string" % name]
        if item.get("min") not in ("", None) and len(value) < int(item["min"]):
            return ["%s is shorter than %s" % (name, item["min"])]
        if item.get("max") not in ("", None) and len(value) > int(item["max"]):
            return ["%s is longer than %s" % (name, item["max"])]
    elif qtype in ("integer", "float"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return ["%s must be a number" % name]
        if item.get("min") not in ("", None) and value < item["min"]:
            return ["%s is below %s" % (name, item["min"])]
        if item.get("max") not in ("", None) and value > item["max"]:
            return ["%s is above %s" % (name, item["max"])]
    elif qtype == "multiplechoice" and value not in item["choices"]:
        return ["%s must be one of %s" % (name, item["choices"])]
    return []


def awx_launch_extra_vars(survey, answers=None):
    """The extra_vars AWX gives ansible-playbook: every valid default, overridden by answers."""
    extra_vars = {}
    for item in survey["spec"]:
        if item.get("default") is not None and not awx_answer_errors(item, item["default"]):
            extra_vars[item["variable"]] = item["default"]
    for name, value in (answers or {}).items():
        item = next(i for i in survey["spec"] if i["variable"] == name)
        errors = awx_answer_errors(item, value)
        if errors:
            raise ValueError("; ".join(errors))
        extra_vars[name] = value
    return extra_vars


def semaphore_var_errors(var):
    errors = []
    where = "survey var %r" % var.get("name")
    if not is_variable_name(var.get("name")):
        errors.append("%s: name is not a valid Ansible variable name" % where)
    if not var.get("title"):
        errors.append("%s: title is required" % where)
    if var.get("type", "") not in SEMAPHORE_VAR_TYPES:
        errors.append("%s: type %r unknown" % (where, var.get("type")))
    if not isinstance(var.get("required", False), bool):
        errors.append("%s: required must be a boolean" % where)
    if "default_value" in var and not isinstance(var["default_value"], str):
        errors.append("%s: default_value must be a string" % where)
    if var.get("type") == "enum":
        values = var.get("values") or []
        names = [v.get("name") for v in values]
        if not values or "" in names or len(set(names)) != len(names):
            errors.append("%s: an enum needs values with unique, non-empty names" % where)
        if var.get("default_value", "") not in [v.get("value") for v in values] + [""]:
            errors.append("%s: default_value is not one of the values" % where)
    return errors


def semaphore_env_errors(environment):
    """Semaphore's Environment.Validate: a name, json an object, env an object of scalars."""
    errors = []
    if not environment.get("name"):
        errors.append("environment name can not be empty")
    for field, scalars in (("json", False), ("env", True)):
        text = environment.get(field)
        if not text:
            continue
        try:
            data = json.loads(text)
        except ValueError:
            errors.append("%s must be valid JSON" % field)
            continue
        if not isinstance(data, dict) or "" in data:
            errors.append("%s must be an object with non-empty keys" % field)
        elif scalars and any(isinstance(v, (list, dict)) for v in data.values()):
            errors.append("%s values must be scalar" % field)
    return errors


def semaphore_launch_extra_vars(survey_vars):
    """What Semaphore's task form sends as extra vars when every field keeps its default."""
    return dict((v["name"], v["default_value"]) for v in survey_vars if "default_value" in v)
