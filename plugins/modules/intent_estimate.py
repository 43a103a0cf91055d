#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name on the controller, where the
# collection's catalog/ and prompts/ files are readable; this file carries the documentation.

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: intent_estimate
short_description: Turn a blueprint into a priced plan (roles, GPUs, models, cost, trade-offs)
version_added: 0.1.0
description:
  - Validates a blueprint (docs/blueprint.md), estimates the work per role (architect, coder,
    debugger, reviewer) and prices every provider x GPU x model x quantization option of the
    dated catalog (docs/catalog.md, docs/cost-model.md).
  - The work estimate comes from an intent file (I(intent_file)), the intent LLM through LiteLLM
    (I(intent_model)), or, when neither is given, the documented deterministic estimator. The
    plan and the report state which. Once an intent model is given, its failures are errors
    naming the model and the reason; there is no silent fallback.
  - Returns the plan (the plan.json contract, docs/plan-format.md) and a human report
    (Markdown plus an SVG cost-vs-time chart). Read-only; always C(changed=false).
  - Runs on the controller (action plugin); the target host is not used.
author:
  - llmops.codestack contributors (@llmops)
requirements:
  - pydantic >= 2
  - PyYAML
  - litellm (only with I(intent_model))
attributes:
  check_mode:
    support: full
    description: Nothing is changed; the plan is computed in check mode too.
  diff_mode:
    support: none
    description: Nothing is changed, so there is nothing to diff.
  action:
    support: full
    description: Implemented by an action plugin that runs on the controller.
options:
  blueprint:
    description:
      - Path to a blueprint YAML file (relative paths are looked up from the current
        directory, then from the playbook directory) or the blueprint as a mapping.
    type: raw
    required: true
  catalog:
    description:
      - Extra catalog files or folders layered over the bundled C(catalog/) files, in order.
        Entries with the same id replace bundled ones; new ids extend the catalog.
    type: list
    elements: path
    default: []
  intent_file:
    description:
      - A saved intent result (JSON or YAML, as written to C(intent.json) by
        C(llmops.codestack.plan)) used instead of asking an LLM. Makes plans reproducible.
      - Mutually exclusive with I(intent_model).
    type: path
  intent_model:
    description:
      - LiteLLM model name of the intent LLM (for example C(openai/intent) behind a LiteLLM
        proxy, or any provider model LiteLLM supports).
    type: str
  intent_api_base:
    description:
      - Base URL for the intent model (for example a LiteLLM proxy C(http://127.0.0.1:4000)).
    type: str
  intent_api_key:
    description:
      - API key for the intent model.
    type: str
  intent_timeout:
    description:
      - Seconds to wait for one intent LLM answer.
    type: int
    default: 60
  usd_per_eur:
    description:
      - Exchange rate used for EUR budgets and prices; defaults to the catalog's C(EUR) entry.
    type: float
  max_alternatives:
    description:
      - How many fallback options to list per deployment (capacity fallbacks).
    type: int
    default: 3
  control_server:
    description:
      - The control server the stack creates for its gateway, guard and IDE, as
        C(codestack_control_server) describes it (C(provider), C(server_type), C(location); the
        other keys are ignored here). The plan prices it from the catalog's C(control_servers)
        (C(<provider>:<type>:<location>), else C(<provider>:<type>)) from creation until
        teardown at the deadline, billed as its provider bills, into C(control_plane) and the
        totals; a type the catalog does not price fails the plan, naming the types it lists.
      - Empty (the default) when the controller or an inventory host runs the control plane;
        the stack bills nothing for it.
    type: dict
    default: {}
notes:
  - The bundled catalog's prices are indicative; refresh them with a user catalog file.
seealso:
  - name: Plan format
    description: The plan.json contract that later stages read.
    link: https://example.invalid/llmops/codestack/docs/plan-format.md
"""

EXAMPLES = r"""
- name: Plan on the deterministic estimator (no LLM needed)
  llmops.codestack.intent_estimate:
    blueprint: blueprints/medium-webapp.yml
  register: __plan

- name: Plan with the intent LLM behind a LiteLLM proxy and a refreshed price list
  llmops.codestack.intent_estimate:
    blueprint: "{{ lookup('ansible.builtin.file', 'my-blueprint.yml') | from_yaml }}"
    catalog:
      - files/prices-2026-12.yml
    intent_model: openai/intent
    intent_api_base: http://127.0.0.1:4000
    intent_api_key: "{{ litellm_master_key }}"
  register: __plan

- name: Show the chosen model per role
  ansible.builtin.debug:
    msg: "{{ __plan.plan.roles | dict2items | map(attribute='value.deployment') | list }}"
"""

RETURN = r"""
plan:
  description: The plan (docs/plan-format.md).
  returned: success
  type: dict
  contains:
    schema_version:
      description: Version of the plan format.
      type: int
      sample: 1
    stack_id:
      description: Label value put on every resource of this stack.
      type: str
      sample: codestack-shop-webapp
    intent:
      description: Where the work estimate came from and the tasks per role.
      type: dict
      sample: {"source": "deterministic", "model": null, "tasks": [], "cost_drivers": []}
    roles:
      description: One entry per role with its gateway alias and deployment.
      type: dict
      sample: {"coder": {"alias": "coder", "deployment": "coder-qwen2-5-coder-7b-awq-rtx4090"}}
    deployments:
      description: Unique serving units with provider, offer, GPU, model, engine, alternatives.
      type: list
      elements: dict
    totals:
      description: Wall hours, GPU hours and cost.
      type: dict
      sample: {"hours": 0.5, "gpu_hours": 0.9, "cost_usd": 0.86, "cost_eur": 0.79}
    checks:
      description: Whether budget, deadline and quality hold.
      type: dict
    fits:
      description: True when every check holds.
      type: bool
    pareto:
      description: Alternatives (chosen, cheapest, fastest, best quality) and points of the exact cost-time Pareto front.
      type: list
      elements: dict
    tradeoffs:
      description: What to change when the blueprint does not fit.
      type: list
      elements: dict
report:
  description: The human report.
  returned: success
  type: dict
  contains:
    markdown:
      description: The Markdown page; it links the chart as C(cost-vs-time.svg).
      type: str
    svg:
      description: The cost-vs-time chart of the alternatives.
      type: str
    chart_file:
      description: File name the Markdown page expects for the chart.
      type: str
      sample: cost-vs-time.svg
intent:
  description: The intent result the plan was built from (save it to re-plan with I(intent_file)).
  returned: success
  type: dict
  sample: {"source": "deterministic", "model": null, "reasoning": "...", "tasks": [], "cost_drivers": []}
intent_source:
  description: Where the work estimate came from.
  returned: success
  type: str
  sample: deterministic
"""
