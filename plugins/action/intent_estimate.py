# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.intent_estimate: blueprint -> intent -> priced plan."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError,
    load_blueprint,
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)
from ansible_collections.llmops.codestack.plugins.module_utils._estimator import estimate
from ansible_collections.llmops.codestack.plugins.module_utils._user_catalog import place
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    PlanError,
    build_plan,
)
from ansible_collections.llmops.codestack.plugins.module_utils._report import (
    CHART_FILE,
    render_markdown,
    render_svg,
)

try:
    from ansible_collections.llmops.codestack.plugins.module_utils import _intent
    INTENT_IMPORT_ERROR = None
except ImportError as _exc:  # the intent LLM support is optional for the deterministic path
    _intent = None
    INTENT_IMPORT_ERROR = _exc

ARGUMENT_SPEC = dict(
    blueprint=dict(type="raw", required=True),
    catalog=dict(type="list", elements="path", default=[]),
    intent_file=dict(type="path"),
    intent_model=dict(type="str"),
    intent_api_base=dict(type="str"),
    intent_api_key=dict(type="str", no_log=True),
    intent_timeout=dict(type="int", default=60),
    usd_per_eur=dict(type="float"),
    max_alternatives=dict(type="int", default=3),
    control_server=dict(type="dict", default={}),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def _find(self, path):
        path = os.path.expanduser(path)
        if os.path.isabs(path) or os.path.exists(path):
            return path
        found = self._loader.path_dwim(path)
        return found if os.path.exists(found) else path

    def _blueprint(self, value):
        if isinstance(value, dict):
            return validate_blueprint(dict(value))
        if isinstance(value, str):
            return load_blueprint(self._find(value))
        raise BlueprintError("option 'blueprint' must be a path to a YAML file or a mapping; "
                             "got %s" % type(value).__name__, field="blueprint")

    def _intent(self, args, blueprint, catalog):
        if args["intent_file"] or args["intent_model"]:
            if _intent is None:
                raise PlanError("an intent %s was given but this collection's intent support "
                                "(plugins/module_utils/_intent.py) cannot be imported: %s"
                                % ("file" if args["intent_file"] else "model",
                                   INTENT_IMPORT_ERROR))
            if args["intent_file"]:
                return _intent.load_intent_file(self._find(args["intent_file"]), blueprint)
            try:
                return _intent.request_intent(blueprint, args["intent_model"],
                                              api_base=args["intent_api_base"],
                                              api_key=args["intent_api_key"],
                                              timeout=args["intent_timeout"])
            except _intent.IntentError as exc:
                message = to_native(exc)
                if args["intent_model"] not in message:
                    message = "intent model '%s' failed: %s" % (args["intent_model"], message)
                raise PlanError(message)
        return estimate(blueprint, catalog)

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(
            argument_spec=ARGUMENT_SPEC,
            mutually_exclusive=[("intent_file", "intent_model")],
        )
        result["changed"] = False
        errors = [BlueprintError, CatalogError, PlanError]
        if _intent is not None and hasattr(_intent, "IntentError"):
            errors.append(_intent.IntentError)
        try:
            blueprint = self._blueprint(args["blueprint"])
            catalog = load_catalog([self._find(p) for p in args["catalog"]])
            intent = self._intent(args, blueprint, catalog)
            plan = build_plan(blueprint, intent, catalog, usd_per_eur=args["usd_per_eur"],
                              max_alternatives=args["max_alternatives"],
                              control_server=args["control_server"])
            place(plan, catalog)   # deployments on a user's cluster carry its placement
        except tuple(errors) as exc:
            result.update(failed=True, msg=to_native(exc))
            return result
        result.update(
            plan=plan,
            intent=intent,
            intent_source=plan["intent"]["source"],
            report={"markdown": render_markdown(plan), "svg": render_svg(plan),
                    "chart_file": CHART_FILE},
        )
        return result
