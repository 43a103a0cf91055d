# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.host_probe: on the local connection without become it
looks itself, in the worker process (plugin_utils/_inprocess.py), with the module's own code
(module_utils/_probe.py); elsewhere it runs the module on the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _probe
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import run_here, runs_here


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        if not runs_here(self):
            result.update(self._execute_module(module_name="llmops.codestack.host_probe",
                                               module_args=self._task.args, task_vars=task_vars))
            return result
        validation, params = self.validate_argument_spec(argument_spec=_probe.ARGUMENT_SPEC)
        del validation
        try:
            result.update(changed=False, probe=_probe.probe(params, run_here))
        except _probe.ProbeError as exc:
            result.update(failed=True, msg=to_text(exc))
        return result
