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
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _hostfiles, _service
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import module_or_here


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
        result.update(module_or_here(self, task_vars, "llmops.codestack.host_files", _hostfiles.ARGUMENT_SPEC,
                                     _hostfiles.apply, module_args=module_args))
        # The module's arguments hold every file's content: never echo them back.
        result.pop("invocation", None)
        return result
