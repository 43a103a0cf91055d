"""An action plugin of this collection as a task would get it, for the unit tests: the task's
arguments, check and diff mode, and the connection it runs on (local, or another transport;
become; a task environment)."""

from unittest.mock import MagicMock

from ansible.playbook.task import Task
from ansible.template import Templar


def make_action(plugin_class, args, transport="local", check=False, diff=False, become=False, environment=None):
    task = MagicMock(Task)
    task.args = args
    task.async_val = 0
    task.check_mode = check
    task.diff = diff
    task.environment = environment
    connection = MagicMock()
    connection.transport = transport
    play_context = MagicMock()
    play_context.become = become
    loader = MagicMock()
    return plugin_class(task, connection, play_context, loader=loader, templar=Templar(loader=loader),
                        shared_loader_obj=None)
