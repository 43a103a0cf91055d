# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.host_files: reads files[].src from the role's files/,
keeps secret contents out of the logged arguments, then runs the module on the host once, or,
on the local connection without become (plugin_utils/_inprocess.py), does the module's work
itself in the worker process with the module's own code (module_utils/_hostfiles.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _hostfiles, _service
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import runs_here


def build_args(args, read_src):
    """The module's arguments from the task's: each enabled file's ``src`` replaced by its
    content (``read_src(src)``), secret files moved to ``secret_files``, disabled ones dropped."""
    args = dict(args)
    try:
        args["files"], args["secret_files"] = _service.split_files(
            [entry for entry in (args.get("files") or []) if entry.get("enabled", True)], read_src)
    except ValueError as exc:
        raise AnsibleActionFail("host_files: %s" % exc)
    return args


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _supports_check_mode = True
    _supports_async = False

    def _read_src(self, src):
        try:
            path = self._find_needle("files", src)
            with open(path, "rb") as handle:
                return to_text(handle.read(), errors="surrogate_or_strict")
        except (AnsibleError, IOError, OSError) as exc:
            raise ValueError("cannot read %s: %s" % (src, exc))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            module_args = build_args(self._task.args, self._read_src)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=to_text(exc))
            return result
        if runs_here(self):
            # The arguments after build_args, validated as the module would validate them.
            validation = ArgumentSpecValidator(_hostfiles.ARGUMENT_SPEC).validate(module_args)
            if validation.error_messages:
                result.update(failed=True, msg="host_files: %s" % "; ".join(validation.error_messages))
                return result
            done = _hostfiles.apply(validation.validated_parameters, bool(self._task.check_mode), bool(self._task.diff))
            # As AnsibleModule does with its answer: no secret content anywhere in it.
            result.update(remove_values(done, validation._no_log_values))
            return result
        result.update(self._execute_module(module_name="llmops.codestack.host_files",
                                           module_args=module_args, task_vars=task_vars))
        # The module's arguments hold every file's content: never echo them back.
        result.pop("invocation", None)
        return result
