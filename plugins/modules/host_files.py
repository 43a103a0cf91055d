#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_files
short_description: Put a role's directories, links and files right on a host in one call
version_added: 0.5.0
description:
  - Creates directories, symbolic links and files, each only where it differs from what is
    asked (content, mode, owner, group, link target), in one module run instead of one task
    per path. A re-run that finds everything in place changes nothing and costs one module
    run.
  - The files' contents come from the task (rendered on the controller, for instance with the
    C(ansible.builtin.template) lookup) or, with O(files[].src), from the role's C(files/).
  - RV(host_files.restart) says whether a file marked O(files[].restart) changed, so that a
    task can notify the handler that restarts the program reading it.
  - The action plugin puts the content of the files marked O(files[].secret) into a separate,
    C(no_log) argument, so that a failure or C(-vvv) never shows them, and no diff holds them.
author:
  - llmops.codestack maintainers (@llmops)
options:
  owner:
    description:
      - The user who owns the entries marked O(directories[].owned) or O(files[].owned);
        empty to leave the owner as it is (a new path then belongs to the caller).
      - An unknown user or group fails the task, except in check mode (a user the same run
        would create first).
    type: str
    default: ""
  group:
    description:
      - Their group; empty to leave it as it is.
    type: str
    default: ""
  directories:
    description:
      - Directories to create or put right, in order. Missing parents are created with the
        same owner, group and mode, as M(ansible.builtin.file) does.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      mode:
        description: Its mode, an octal string.
        type: str
        default: "0750"
      owned:
        description: Whether it belongs to O(owner) and O(group).
        type: bool
        default: true
      enabled:
        description: Whether to manage it; V(false) leaves it as it is.
        type: bool
        default: true
  links:
    description:
      - Symbolic links to create or point again (replaced atomically when their target
        differs), after the directories.
    type: list
    elements: dict
    default: []
    suboptions:
      dest:
        description: The link.
        type: path
        required: true
      src:
        description: What it points to, written as given (relative or absolute).
        type: str
        required: true
      enabled:
        description: Whether to manage it.
        type: bool
        default: true
  files:
    description:
      - Files to write, after the links. Each is written (atomically) only when its content
        differs; its mode, owner and group are put right either way. A missing parent
        directory is created with mode C(0755) and the entry's owner.
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
        description: A file of the role's C(files/) (or a path on the controller), read there.
        type: str
      mode:
        description: Its mode, an octal string.
        type: str
        default: "0644"
      owned:
        description: Whether it belongs to O(owner) and O(group).
        type: bool
        default: true
      secret:
        description: The content is a secret; it is never logged and never shown in a diff.
        type: bool
        default: false
      restart:
        description: Whether a change of its content counts for RV(host_files.restart).
        type: bool
        default: true
      json_merge:
        description:
          - The content is a JSON object to merge over the object the file holds (keys of the
            content win, others stay), written as C(to_nice_json(indent=2)) writes it. A file
            that is missing, empty or not a JSON object counts as C({}).
        type: bool
        default: false
      enabled:
        description: Whether to manage it.
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
        description: Its text.
        type: str
      src:
        description: A file of the role's C(files/), read on the controller.
        type: str
      mode:
        description: Its mode, an octal string.
        type: str
        default: "0644"
      owned:
        description: Whether it belongs to O(owner) and O(group).
        type: bool
        default: true
      secret:
        description: The content is a secret.
        type: bool
        default: false
      restart:
        description: Whether a change of its content counts for RV(host_files.restart).
        type: bool
        default: true
      json_merge:
        description: Merge the content over the file's JSON object.
        type: bool
        default: false
      enabled:
        description: Whether to manage it.
        type: bool
        default: true
attributes:
  check_mode:
    support: full
    description: Reports what would be created or written, and changes nothing.
  diff_mode:
    support: full
    description: The before and after of every changed file that is not a secret.
seealso:
  - module: llmops.codestack.run_service
    description: The same file handling, for a service's files, with its start and wait.
"""

EXAMPLES = r"""
- name: Write the IDE user's configuration
  llmops.codestack.host_files:
    owner: dev
    group: dev
    directories:
      - {path: /home/dev/.config/kilo, mode: "0700"}
    files:
      - dest: /home/dev/.config/kilo/litellm.key
        content: "{{ gateway_key }}"
        mode: "0600"
        secret: true
      - dest: /home/dev/.config/kilo/kilo.jsonc
        content: "{{ lookup('ansible.builtin.template', 'kilo.jsonc.j2') }}"
        mode: "0600"
      - dest: /home/dev/.local/share/code-server/User/settings.json
        content: "{{ {'telemetry.telemetryLevel': 'off'} | to_json }}"
        json_merge: true
        mode: "0600"
        restart: false
  register: ide_files
  notify: Restart code-server
"""

RETURN = r"""
host_files:
  description: What the call did.
  returned: always
  type: dict
  contains:
    written:
      description:
        - The paths created or changed (or that would be, in check mode); directories end in
          C(/), links read C(dest -> src). Secret files are listed by path only.
      type: list
      elements: str
    restart:
      description: Whether the content of a file marked O(files[].restart) changed.
      type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils import _hostfiles


def main():
    module = AnsibleModule(argument_spec=_hostfiles.ARGUMENT_SPEC, supports_check_mode=True)
    result = _hostfiles.apply(module.params, module.check_mode, module._diff)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
