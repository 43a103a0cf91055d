# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.alias_check: on the local connection without become it
asks itself, in the worker process (plugin_utils/_inprocess.py), with the module's own code
(module_utils/_aliascheck.py); elsewhere it runs the module on the host, where the gateway's
loopback address is."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _aliascheck
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import module_or_here


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        result.update(module_or_here(self, task_vars, "llmops.codestack.alias_check", _aliascheck.ARGUMENT_SPEC,
                                     lambda params, check_mode, diff: _aliascheck.check(params, check_mode)))
        return result
