# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of llmops.codestack.run_service: renders the service's control script and
unit, reads files[].src from the role's files/, keeps secret contents out of the logged
arguments, then runs the module on the host once, or, on the local connection without become
(plugin_utils/_inprocess.py), does the module's work itself in the worker process with the
module's own code (module_utils/_runservice.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.llmops.codestack.plugins.module_utils import _runservice, _service
from ansible_collections.llmops.codestack.plugins.plugin_utils._inprocess import Failed, HostHere, module_or_here

UNIT_DIR = "/etc/systemd/system"


def build_args(args, read_src):
    """The module's arguments from the task's: ctl.sh (and the unit under systemd) added to the
    files, each ``src`` replaced by its content (``read_src(src)``), secret files moved to
    ``secret_files``."""
    args = copy.deepcopy(dict(args))
    keys = ("name", "description", "dir", "log", "argv", "restart_delay", "stop_timeout", "user")
    svc = dict((key, args.get(key)) for key in keys)
    svc["restart_delay"] = int(svc["restart_delay"] if svc["restart_delay"] is not None else 5)
    svc["stop_timeout"] = int(svc["stop_timeout"] if svc["stop_timeout"] is not None else 10)
    try:
        files = [dict(dest=svc["dir"] + "/ctl.sh", content=_service.ctl_script(svc), mode="0755", owned=False)]
        if args.get("manager") == "systemd":
            files.append(dict(dest="%s/%s.service" % (UNIT_DIR, svc["name"]), content=_service.systemd_unit(svc), owned=False))
    except ValueError as exc:
        raise AnsibleActionFail("run_service: %s" % exc)
    try:
        plain, secret = _service.split_files(files + list(args.get("files") or []), read_src)
    except ValueError as exc:
        raise AnsibleActionFail("run_service: %s" % exc)
    args["files"] = plain
    args["secret_files"] = secret
    return args


def _run_here(params, check_mode, diff):
    """The module's answer, from its own code run in this process."""
    try:
        return _runservice.run(HostHere(params, check_mode, diff))
    except Failed as failure:
        return failure.result


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
            raise AnsibleActionFail("run_service: cannot read %s: %s" % (src, exc))

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        del tmp
        try:
            module_args = build_args(self._task.args, self._read_src)
        except AnsibleActionFail as exc:
            result.update(failed=True, msg=to_text(exc))
            return result
        result.update(module_or_here(self, task_vars, "llmops.codestack.run_service", _runservice.ARGUMENT_SPEC,
                                     _run_here, module_args=module_args))
        # The module's arguments hold every file's content: never echo them back.
        result.pop("invocation", None)
        return result
