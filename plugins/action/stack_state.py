# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.stack_state.

The state file lives on the controller (the tasks delegate to localhost): there the action
applies the change itself, in the worker process, instead of shipping the module and starting
a Python for each record (about 0.5 s a call, several calls a stage). On any other connection,
or with become, it runs the module as before.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _statefile
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import module_or_here

ARGUMENT_SPEC = _statefile.ARGUMENT_SPEC


def _record(params, check_mode, diff):
    try:
        return _statefile.record(params, check_mode, diff)
    except _statefile.StateFileError as exc:
        return dict(failed=True, msg=to_text(exc))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(module_or_here(self, task_vars, "llmops.codestack.stack_state", ARGUMENT_SPEC, _record))
        return result
