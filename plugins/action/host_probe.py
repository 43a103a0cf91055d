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
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import module_or_here, run_here


def _look(params, check_mode, diff):
    del check_mode, diff  # it only reads, the same in check mode
    try:
        return dict(changed=False, probe=_probe.probe(params, run_here))
    except _probe.ProbeError as exc:
        return dict(failed=True, msg=to_text(exc))


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(module_or_here(self, task_vars, "llmops.codestack.host_probe", _probe.ARGUMENT_SPEC, _look))
        return result
