# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.host_facts: where the worker process is the host's
Python (the local connection without become or a task environment, and the task's
interpreter is this process's), it gathers the facts itself with setup's collectors
(module_utils/_facts.py); elsewhere it runs the module on the host."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

from ansible.module_utils.common.process import get_bin_path
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _facts
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import HostHere, module_or_here, runs_here

MODULE = "llmops.codestack.host_facts"


class _Host(HostHere):
    """What setup's collectors ask of AnsibleModule, answered in the worker process."""

    def run_command(self, argv, **kwargs):  # the collectors pass strings and options too
        del kwargs
        if isinstance(argv, (str, bytes)):
            argv = ["/bin/sh", "-c", to_text(argv)]
        return super(_Host, self).run_command(list(argv))

    def get_bin_path(self, arg, required=False, opt_dirs=None):
        try:
            return get_bin_path(arg, opt_dirs=opt_dirs)
        except ValueError:
            if required:
                self.fail_json(msg="Failed to find required executable %s" % arg)
            return None

    def warn(self, warning):
        self.warnings = getattr(self, "warnings", []) + [to_text(warning)]

    def deprecate(self, msg, *args, **kwargs):
        del args, kwargs
        self.warn(msg)


def _gather(params, check_mode, diff):
    del check_mode, diff  # it only reads
    host = _Host(params, False, False)
    try:
        facts = _facts.gather(host)
    except _facts.FactsError as exc:
        return dict(failed=True, msg=to_text(exc))
    result = dict(changed=False, ansible_facts=facts)
    if getattr(host, "warnings", None):
        result["warnings"] = host.warnings
    return result


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def _python_is_mine(self, task_vars):
        """Whether the task's Python on the host is the one running this process (the implicit
        localhost's ansible_python_interpreter is sys.executable): the python facts then agree."""
        interpreter = (task_vars or {}).get("ansible_python_interpreter")
        if interpreter is None:
            return False
        return to_text(self._templar.template(interpreter)) == sys.executable

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        if runs_here(self) and not self._python_is_mine(task_vars):
            result.update(self._execute_module(module_name=MODULE, module_args=self._task.args, task_vars=task_vars))
        else:
            result.update(module_or_here(self, task_vars, MODULE, _facts.ARGUMENT_SPEC, _gather))
        return result
