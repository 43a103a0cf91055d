#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: run_service
short_description: Run a long-running service of the stack, the one way the collection does
version_added: 0.2.0
description:
  - Writes a service's files (configuration, secrets, its control script C(<dir>/ctl.sh) and,
    under systemd, its unit), starts it (restarting it when one of them changed, or when
    O(restart) says so), and waits until it answers, in one call instead of a task per file.
  - Where systemd is PID 1 (O(manager=systemd)) the unit C(/etc/systemd/system/<name>.service)
    runs C(ctl.sh run); elsewhere (containers, CI) C(ctl.sh start) detaches a supervisor that
    restarts the server when it exits. The stop command goes to the result (RV(stop_argv)), for
    the stack's state file.
  - The action plugin renders C(ctl.sh) and the unit, and reads O(files[].src) from the role's
    C(files/) on the controller; the module writes on the host.
  - A file whose content is unchanged is not written; its mode and owner are still put right.
author:
  - llmops.codestack maintainers (@llmops)
options:
  name:
    description:
      - The service's name (the systemd unit's, and the supervisor's in its log lines).
    type: str
    required: true
  description:
    description:
      - The unit's C(Description=).
    type: str
  dir:
    description:
      - The service's directory (created when missing); C(ctl.sh), C(env) (sourced before
        start when present) and the supervisor's pid file live there.
    type: path
    required: true
  log:
    description:
      - The file the service's output is appended to.
    type: path
    required: true
  argv:
    description:
      - The server's command line, run in O(dir).
    type: list
    elements: str
    required: true
  user:
    description:
      - The user the service runs as (systemd) and who owns its files; empty for the caller.
    type: str
    default: ""
  manager:
    description:
      - V(systemd) or V(process) (the supervisor of C(ctl.sh)).
    type: str
    choices: [systemd, process]
    required: true
  restart_delay:
    description:
      - Seconds between a crash and the restart.
    type: int
    default: 5
  stop_timeout:
    description:
      - Seconds from TERM to KILL when stopping.
    type: int
    default: 10
  directories:
    description:
      - Other directories to create first (mode C(0750) unless given).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Its mode, octal string.
        type: str
        default: "0750"
  files:
    description:
      - The files the service reads. Each is written only when its content differs; any that
        is written restarts the service.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Where it goes.
        type: path
        required: true
      content:
        description: Its text (or use O(files[].src)).
        type: str
      src:
        description: A file of the role's C(files/) (or a path), read on the controller.
        type: str
      mode:
        description: Its mode, octal string.
        type: str
        default: "0644"
      secret:
        description:
          - The content is a secret; it is never logged and never shown in a diff.
        type: bool
        default: false
      restart:
        description: Whether a change of this file restarts the service.
        type: bool
        default: true
      owned:
        description:
          - Whether the file belongs to O(user). The control script and the unit never do
            (root runs them).
        type: bool
        default: true
  secret_files:
    description:
      - Filled by the action plugin from the entries of O(files) marked secret, whose content
        is then kept out of logs (C(no_log)); not meant to be set in a task.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: Where it goes.
        type: path
        required: true
      content:
        description: Its text (or use O(files[].src)).
        type: str
      src:
        description: A file of the role's C(files/) (or a path), read on the controller.
        type: str
      mode:
        description: Its mode, octal string.
        type: str
        default: "0644"
      secret:
        description:
          - The content is a secret; it is never logged and never shown in a diff.
        type: bool
        default: false
      restart:
        description: Whether a change of this file restarts the service.
        type: bool
        default: true
      owned:
        description:
          - Whether the file belongs to O(user). The control script and the unit never do
            (root runs them).
        type: bool
        default: true
  restart:
    description:
      - Restart the service even when no file changed (say, after its software was updated).
    type: bool
    default: false
  wait_url:
    description:
      - An HTTP URL that answers 200 once the service is ready; empty to not wait.
    type: str
    default: ""
  wait_timeout:
    description:
      - Seconds to wait for O(wait_url).
    type: int
    default: 120
  wait_api_key:
    description:
      - A bearer token O(wait_url) needs (sent as C(Authorization)); empty for none.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Reports which files would be written and whether the service would be (re)started.
  diff_mode:
    support: full
    description: The before and after of every file that is not a secret.
notes:
  - The action plugin puts secret contents in a separate, C(no_log) argument, so that a failure
    or C(-vvv) never shows them.
"""

EXAMPLES = r"""
- name: Run the waker
  llmops.codestack.run_service:
    name: codestack-waker
    description: codestack waker
    dir: /var/lib/codestack/demo/waker
    log: /var/lib/codestack/demo/waker/waker.log
    argv: [/opt/codestack/venvs/waker/bin/python, /var/lib/codestack/demo/waker/codestack_waker.py]
    manager: "{{ 'systemd' if ansible_facts.service_mgr == 'systemd' else 'process' }}"
    files:
      - {src: codestack_waker.py, dest: /var/lib/codestack/demo/waker/codestack_waker.py}
      - {content: "{{ config | to_nice_json }}", dest: /var/lib/codestack/demo/waker/config.json, mode: "0640"}
    wait_url: http://127.0.0.1:8899/_status
"""

RETURN = r"""
run_service:
  description: What the call did.
  returned: always
  type: dict
  contains:
    written:
      description: The files written (or that would be, in check mode).
      type: list
      elements: str
    started:
      description: Whether the service was started or restarted.
      type: bool
    ready:
      description: Whether O(wait_url) answered 200 (false when not asked or in check mode).
      type: bool
stop_argv:
  description: The command that stops the service (for the stack's state file).
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils import _runservice


def main():
    module = AnsibleModule(argument_spec=_runservice.ARGUMENT_SPEC, supports_check_mode=True)
    module.exit_json(**_runservice.run(module))


if __name__ == "__main__":
    main()
