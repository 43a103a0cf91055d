# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.stack_context: a stage's view of its stack directory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.module_utils.six.moves.collections_abc import Mapping
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _stack

ARGUMENT_SPEC = dict(
    path=dict(type="str", required=True),
    build=dict(type="bool", default=False),
    require_state=dict(type="bool", default=False),
)


def _check_plan(task_vars):
    """The plan a check run's plan stage computed (fact codestack_check_plan of localhost)."""
    planned = task_vars.get("codestack_check_plan")
    if planned is None:
        try:
            planned = task_vars["hostvars"]["localhost"]["codestack_check_plan"]
        except (KeyError, TypeError):
            planned = None
    if not isinstance(planned, Mapping) or not planned.get("stack_id"):
        return None
    # Plain containers (facts may come back as the templar's lazy ones).
    return json.loads(json.dumps(planned))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        _valid, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        result["changed"] = False
        try:
            directory = _stack.stack_dir(args["path"])
            plan_file = os.path.join(directory, "plan.json")
            state_file = os.path.join(directory, "state.json")
            # A check run (site.yml --check) on a stack not built yet: the plan stage computed the
            # plan but wrote nothing; the stages then say what they would create.
            check_only = bool(self._task.check_mode) and not os.path.exists(state_file)
            planned = _check_plan(task_vars or {}) if check_only and not os.path.exists(plan_file) else None
            if planned:
                plan = planned
            else:
                plan = _stack.load_plan(plan_file)
            if args["require_state"] and not os.path.exists(state_file) and not check_only:
                raise _stack.StackError("the stack %s has no state file %s: build it first (site.yml or "
                                        "provision.yml)" % (plan["stack_id"], state_file))
            state = _stack.load_state(state_file, plan["stack_id"])
        except _stack.StackError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        keyed = _stack.keyed_providers(os.environ)
        if args["build"]:
            problems = _stack.build_problems(plan, os.environ)
            if problems:
                result.update(failed=True, msg="%s. Nothing was created." % ". ".join(problems))
                return result
            plan = dict(plan, deployments=_stack.usable_alternatives(plan["deployments"], keyed))
        local, rented = _stack.split_deployments(plan)
        facts = {
            "codestack_stack_dir": directory,
            "codestack_plan_path": plan_file,
            "codestack_state_file": state_file,
            "codestack_plan": plan,
            "codestack_state": state,
            "codestack_budget_usd": _stack.budget_usd(plan),
            "codestack_local_deployments": local,
            "codestack_local_context": max([_stack.served_context(d) or 0 for d in local] or [0]),
            "codestack_rented_deployments": rented,
            "codestack_kubernetes_deployments": _stack.kubernetes_deployments(plan),
            "codestack_api_deployments": _stack.api_deployments(plan),
            "codestack_api_key_envs": _stack.api_key_envs(plan),
            "codestack_paid": bool(rented),
            "codestack_keyed_providers": keyed,
            "codestack_stale_rented": _stack.stale_rented(state, plan),
            "codestack_check_only": check_only,
        }
        result["ansible_facts"] = facts
        result["stack_id"] = plan["stack_id"]
        result["stack_dir"] = directory
        return result
