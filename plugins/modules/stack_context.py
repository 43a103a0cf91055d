#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name on the controller, where the stack
# directory lives; this file carries the documentation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: stack_context
short_description: Load a stack's plan.json and state.json for a stage playbook
version_added: 0.3.0
description:
  - Every stage playbook (C(plan), C(provision), C(serve), C(route), C(scale), C(ide), C(guard))
    starts from the stack directory alone, so that each one also runs by itself. This module reads
    C(plan.json) and C(state.json) there and sets the facts the stages share.
  - With O(build=true) it first checks that every deployment's provider is one the stages provision
    and that its credential is set in the controller's environment (C(RUNPOD_API_KEY),
    C(VAST_API_KEY)), naming every problem at once before anything is created, and drops the
    plan's alternatives whose provider has no key.
  - In check mode on a stack that has no state file yet (C(site.yml --check) before the first
    build), O(require_state) does not fail, the state is empty and C(codestack_check_only) is true;
    the stages then say what they would create instead of running their roles. When the plan
    stage of the same check run wrote no C(plan.json), the plan it computed (fact
    C(codestack_check_plan) of C(localhost)) is used.
  - Runs on the controller (action plugin), whatever host the play targets. Read-only; always
    C(changed=false).
author:
  - llmops.codestack contributors (@llmops)
options:
  path:
    description:
      - The stack directory (C(codestack_output)). A relative path is the working directory's.
    type: str
    required: true
  build:
    description:
      - Check the providers and credentials for a build, and keep only usable alternatives.
    type: bool
    default: false
  require_state:
    description:
      - Fail when the stack has no state file yet (a stage that needs a built stack).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Changes nothing.
notes:
  - The state file never holds secrets; keys stay in their own 0600 files.
"""

EXAMPLES = r"""
- name: Load the stack
  llmops.codestack.stack_context:
    path: "{{ codestack_output }}"
    build: true
"""

RETURN = r"""
stack_id:
  description: The stack's identifier.
  returned: success
  type: str
stack_dir:
  description: The absolute stack directory.
  returned: success
  type: str
ansible_facts:
  description: Facts for the later tasks of the stage.
  returned: success
  type: dict
  contains:
    codestack_stack_dir:
      description: The absolute stack directory.
      type: str
      returned: success
    codestack_plan_path:
      description: Its plan.json.
      type: str
      returned: success
    codestack_state_file:
      description: Its state.json (it may not exist yet).
      type: str
      returned: success
    codestack_plan:
      description: The plan (with only usable alternatives when O(build=true)).
      type: dict
      returned: success
    codestack_state:
      description: The state document (empty resources when there is no file yet).
      type: dict
      returned: success
    codestack_budget_usd:
      description: The blueprint's budget in USD.
      type: float
      returned: success
    codestack_local_deployments:
      description: The plan's deployments on the control host (provider C(local)).
      type: list
      elements: dict
      returned: success
    codestack_local_context:
      description:
        - The largest context window of those deployments (C(serving.max_model_len), else the
          model's), what llama.cpp is started with; 0 when there is none.
      type: int
      returned: success
    codestack_rented_deployments:
      description: The plan's rented deployments (not the API-served ones nor those on a user's cluster).
      type: list
      elements: dict
      returned: success
    codestack_kubernetes_deployments:
      description:
        - The plan's deployments on a Kubernetes cluster the user brings (provider
          C(kubernetes)); the provision stage deploys them with C(llmops.codestack.vllm_server)
          and C(llmops.codestack.keda_autoscaler) (docs/autoscaling.md).
      type: list
      elements: dict
      returned: success
    codestack_api_deployments:
      description:
        - The plan's deployments the gateway calls without provisioning (per-token APIs and
          Ollama; they have an C(api) block).
      type: list
      elements: dict
      returned: success
    codestack_api_key_envs:
      description:
        - Names (never values) of the environment variables holding the keys of the plan's
          per-token API routes; the route stage hands the set ones to the gateway.
      type: list
      elements: str
      returned: success
    codestack_paid:
      description: Whether the plan rents anything.
      type: bool
      returned: success
    codestack_keyed_providers:
      description: The providers whose credential is set, C(local) (and keyless C(ollama)) first.
      type: list
      elements: str
      returned: success
    codestack_stale_rented:
      description: Rented deployments in the state file that the plan no longer has.
      type: list
      elements: str
      returned: success
    codestack_check_only:
      description: A check run on a stack not built yet (no state file); the stages only report.
      type: bool
      returned: success
"""
