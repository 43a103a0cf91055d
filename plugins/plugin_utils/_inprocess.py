# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When an action plugin may do its module's work itself, in Ansible's worker process.

On the local connection without become, a module runs on this machine, as this user, with
this process's environment: the same place the worker process already is. Shipping it there
costs an AnsiballZ payload and a fresh Python importing ``ansible.module_utils.basic`` (0.4 to
1 s a call on 2 busy cores). The actions of ``host_probe``, ``host_files``, ``alias_check``,
``run_service`` and ``stack_state`` then call the same code the module runs (their
``module_utils``) directly. Any other
connection, become, or a task ``environment`` (which only the module's process would get)
keeps the module run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import subprocess

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.module_utils.common.text.converters import to_text


def runs_here(action):
    """Whether ``action`` (an ActionBase) may do its module's work in this process."""
    if getattr(action._connection, "transport", None) != "local":
        return False
    if action._play_context.become:
        return False
    environment = getattr(action._task, "environment", None)
    return not environment or all(not entry for entry in environment)


def module_or_here(action, task_vars, module_name, argument_spec, work, module_args=None):
    """The answer of ``module_name`` for ``module_args`` (the task's arguments unless given):
    the module run on the host, or, where ``runs_here``, ``work(params, check_mode, diff)``
    with the arguments validated as the module validates them (a failure naming every bad one,
    before anything is done) and its ``no_log`` values masked in the answer, as AnsibleModule
    masks its own."""
    module_args = action._task.args if module_args is None else module_args
    if not runs_here(action):
        return action._execute_module(module_name=module_name, module_args=module_args, task_vars=task_vars)
    validation = ArgumentSpecValidator(argument_spec).validate(module_args)
    if validation.error_messages:
        return dict(failed=True, msg="%s: %s" % (module_name.rsplit(".", 1)[-1], "; ".join(validation.error_messages)))
    done = work(validation.validated_parameters, bool(action._task.check_mode), bool(action._task.diff))
    return remove_values(done, validation._no_log_values)


def run_here(argv):
    """(rc, stdout, stderr) of ``argv``, without a shell, as AnsibleModule.run_command returns
    them. No file descriptor of the worker process but a null stdin and the two pipes reaches
    the command, so a service it starts in the background holds none of Ansible's."""
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          check=False, close_fds=True)
    return (proc.returncode, to_text(proc.stdout, errors="surrogate_or_replace"),
            to_text(proc.stderr, errors="surrogate_or_replace"))


class Failed(Exception):
    """HostHere.fail_json: the module's failure, with its result."""

    def __init__(self, result):
        super(Failed, self).__init__(result.get("msg", ""))
        self.result = result


class HostHere(object):
    """What module_utils code asks of an AnsibleModule, answered in the worker process."""

    def __init__(self, params, check_mode, diff):
        self.params = params
        self.check_mode = check_mode
        self._diff = diff

    def run_command(self, argv):
        return run_here([to_text(arg) for arg in argv])

    def fail_json(self, **result):
        result["failed"] = True
        raise Failed(result)
