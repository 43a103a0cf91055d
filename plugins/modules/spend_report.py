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
module: spend_report
short_description: Turn the gateway's spend log and plan.json into a spend report with cheaper routes
version_added: 0.4.0
description:
  - Reads the spend log the P(llmops.codestack.litellm_gateway#role) role's custom logger writes
    (C(spend.jsonl), one JSON line per request) and the stack's C(plan.json), and writes
    C(spend-report.md), C(spend-report.html) (charts as inline SVG, no script, nothing fetched) and
    C(spend-report.json) into O(dest).
  - Spend per role, per model (deployment) and per day (UTC), p50/p95 latency and time to first
    token, and per role the same traffic repriced on every route that meets the role's quality
    (C(roles.<role>.min_quality_score), else the plan's C(checks.quality.required_score)) and its
    sensitivity (a sensitive role, C(constraints.sensitive) or C(roles.<role>.sensitive), is only
    repriced on C(local) and C(self_hosted) routes), cheapest first, with the saving.
  - GPU routes are billed per busy second times a billing factor from the plan (cold starts,
    minimum billing); per-token routes per million tokens. docs/spend-report.md has the formulas.
  - Runs on the controller (action plugin), whatever host the play targets. Lines that are not
    log records are counted and skipped.
author:
  - llmops.codestack contributors (@llmops)
options:
  log:
    description: The spend log on the controller (fetched from the control host).
    type: path
    required: true
  plan:
    description: The stack's C(plan.json).
    type: path
    required: true
  dest:
    description: Directory the three report files are written to (created when missing).
    type: path
    required: true
  routes:
    description:
      - More candidate routes, each a mapping with C(name), C(kind) (V(api), V(self_hosted) or
        V(local)), C(quality_score), and either C(usd_per_m_input) and C(usd_per_m_output) (per
        token) or C(price_per_hour_usd), C(decode_tok_s) and C(prefill_tok_s) (per GPU second,
        optionally C(billing_factor)); optional C(provider), C(model), C(source).
      - Routes the catalog does not hold (another provider's offer, a machine of your own).
    type: list
    elements: dict
    default: []
  plan_routes:
    description: Also reprice on the plan's deployments and their alternatives.
    type: bool
    default: true
  catalog_routes:
    description:
      - Also reprice on every per-token API model of the catalog (C(api_models) of the bundled
        catalog and of O(catalog)), at its price per million input and output tokens and its
        quality score. Sensitive roles are never repriced on them.
    type: bool
    default: true
  catalog:
    description: User catalog files read after the bundled catalog (as the planner's C(catalog)).
    type: list
    elements: path
    default: []
  sensitive_roles:
    description: Roles to treat as sensitive on top of what the plan says.
    type: list
    elements: str
    default: []
  mode:
    description: File mode of the report files (they name the stack's traffic and spend).
    type: str
    default: "0600"
attributes:
  check_mode:
    support: full
    description: Computes the report and says whether a file would change; writes nothing.
  diff_mode:
    support: none
    description: Reports which files changed, not their difference.
  platform:
    support: full
    platforms: posix
    description: Runs on the controller.
"""

EXAMPLES = r"""
- name: Write the spend report next to plan.json
  llmops.codestack.spend_report:
    log: "{{ codestack_stack_dir }}/spend.jsonl"
    plan: "{{ codestack_stack_dir }}/plan.json"
    dest: "{{ codestack_stack_dir }}"
    routes:
      - name: deepseek/deepseek-chat
        provider: deepseek
        kind: api
        quality_score: 90
        usd_per_m_input: 0.27
        usd_per_m_output: 1.10
"""

RETURN = r"""
spend_report:
  description: Where the report is and its headline figures.
  returned: success
  type: dict
  contains:
    markdown:
      description: Path of C(spend-report.md).
      type: str
    html:
      description: Path of C(spend-report.html).
      type: str
    json:
      description: Path of C(spend-report.json) (the whole report as data).
      type: str
    requests:
      description: Log records read.
      type: int
    cost_usd:
      description: Spend logged by the gateway.
      type: float
    saving_usd:
      description: Sum over roles of billed spend minus the cheapest eligible route.
      type: float
    skipped_lines:
      description: Lines of the log that were not records.
      type: int
    recommendations:
      description: Per role C(role), C(billed_cost_usd), C(saving_usd) and C(best) (route name or null).
      type: list
      elements: dict
"""
