# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""When an action plugin may do its module's work itself, in Ansible's worker process.

On the local connection without become, a module runs on this machine, as this user, with
this process's environment: the same place the worker process already is. Shipping it there
costs an AnsiballZ payload and a fresh Python importing ``ansible.module_utils.basic`` (0.4 to
1 s a call on 2 busy cores). The actions of ``host_probe``, ``host_files`` and ``stack_state``
then call the same code the module runs (their ``module_utils``) directly. Any other
connection, become, or a task ``environment`` (which only the module's process would get)
keeps the module run.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def runs_here(action):
    """Whether ``action`` (an ActionBase) may do its module's work in this process."""
    if getattr(action._connection, "transport", None) != "local":
        return False
    if action._play_context.become:
        return False
    environment = getattr(action._task, "environment", None)
    return not environment or all(not entry for entry in environment)
