# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""llmops.codestack.warn on the controller: a warning needs nothing from the host, so no module
is sent there (a module run costs a Python start on the host, about 0.3 s)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        validation, args = self.validate_argument_spec(argument_spec={"msg": {"type": "str", "required": True}})
        del validation
        msg = to_text(args["msg"])
        result.update(changed=False, msg=msg, warnings=[msg])
        return result
