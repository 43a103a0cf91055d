# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: intent
author: llmops.codestack contributors (@llmops)
version_added: 0.1.0
short_description: Ask the intent LLM about a blueprint and return the GPU tier and model per role
description:
  - Sends the blueprint to the intent LLM through the LiteLLM SDK (a LiteLLM proxy or any model
    LiteLLM supports), validates and clamps its task estimate, prices every option of the
    catalog with the planner, and returns, for each role (architect, coder, debugger, reviewer),
    the chosen GPU tier and model.
  - Instead of calling the LLM, a saved intent document can be given with O(intent_file), for
    reproducible plans and AWX re-runs.
  - Runs on the controller. The intent pass is described in C(docs/intent.md) of the collection;
    the plan fields in C(docs/plan-format.md).
options:
  _terms:
    description:
      - Path of the blueprint file. Alternative to O(blueprint); give one blueprint only.
      - Relative paths are searched like other file lookups (the play's C(files/) folders and
        the playbook directory).
    type: list
    elements: str
    required: false
  blueprint:
    description:
      - The blueprint, as a path to a YAML file or as a mapping.
      - The schema is in C(docs/blueprint.md) of the collection.
    type: raw
  model:
    description:
      - The LiteLLM model name of the intent LLM, for example V(litellm_proxy/intent) or
        V(openai/intent) (with O(api_base) pointing at a LiteLLM proxy), or any provider model
        that LiteLLM supports.
      - Required unless O(intent_file) is given.
    type: str
    env:
      - name: CODESTACK_INTENT_MODEL
  api_base:
    description:
      - Base URL of the model's API, for example the LiteLLM proxy
        V(http://127.0.0.1:4000) (for V(litellm_proxy/...)) or V(http://127.0.0.1:4000/v1)
        (for V(openai/...)).
    type: str
    env:
      - name: CODESTACK_INTENT_API_BASE
  api_key:
    description:
      - API key for the model (the proxy's master key or a virtual key). Never logged or returned.
    type: str
    env:
      - name: CODESTACK_INTENT_API_KEY
  timeout:
    description: Seconds to wait for each answer of the intent LLM.
    type: int
    default: 60
  max_tokens:
    description: Upper bound on the length of the intent LLM's answer, in tokens.
    type: int
    default: 4096
  temperature:
    description: Sampling temperature for the intent LLM; the model's default when not set.
    type: float
  structured:
    description:
      - How the JSON schema of the answer is enforced.
      - V(auto) asks for OpenAI-style V(json_schema) and steps down to
        V(json_object) with a schema (what llama-cpp-python's server accepts) and then to the
        prompt alone, only when the server rejects the response format itself.
    type: str
    default: auto
    choices: [auto, json_schema, json_object, none]
  prompts_dir:
    description:
      - Directory holding C(intent.md), the system prompt of the intent pass.
      - Defaults to the collection's C(prompts/) directory.
    type: path
  intent_file:
    description:
      - A saved intent document (JSON or YAML, or a previous C(plan.json)) used instead of calling
        the LLM. The result then reports the source V(file).
    type: path
  catalog:
    description:
      - Catalog files (same format as the collection's C(catalog/)) that override or extend the
        collection's catalog, in order.
    type: list
    elements: path
    default: []
  include_plan:
    description: Also return the whole plan (the content of C(plan.json)) under RV(_raw.plan).
    type: bool
    default: false
notes:
  - Failures of a configured intent LLM are errors naming the model and the reason; the lookup
    never falls back silently to another estimate.
  - Requires C(litellm) and C(pydantic) on the controller (C(requirements.txt) of the collection).
seealso:
  - module: llmops.codestack.intent_estimate
"""

EXAMPLES = r"""
- name: Ask the intent LLM behind the local LiteLLM gateway
  ansible.builtin.set_fact:
    stack_choice: >-
      {{ lookup('llmops.codestack.intent', 'blueprints/small.yml',
                model='litellm_proxy/intent', api_base='http://127.0.0.1:4000',
                api_key=litellm_master_key) }}

- name: Show the model and GPU chosen for the coder
  ansible.builtin.debug:
    msg: "{{ stack_choice.roles.coder.model }} on {{ stack_choice.roles.coder.gpu }}"

- name: Re-plan from a saved intent (no LLM call), with an extra catalog file
  ansible.builtin.set_fact:
    stack_choice: >-
      {{ lookup('llmops.codestack.intent', blueprint=my_blueprint,
                intent_file='out/plan.json', catalog=['my-offers.yml'], include_plan=true) }}
"""

RETURN = r"""
_raw:
  description: One mapping (a list of one mapping with C(wantlist=true)).
  type: list
  elements: dict
  contains:
    roles:
      description:
        - Per role (architect, coder, debugger, reviewer), the choice of the planner.
        - Each has C(model) (catalog key), C(hf_repo), C(quantization), C(engine), C(gpu)
          (name), C(gpu_count), C(vram_gb), C(provider), C(pricing), C(offer_id), C(region),
          C(price_per_hour_usd), C(deployment), C(alias), C(hours) and C(cost_usd).
      type: dict
      sample:
        coder:
          model: qwen2.5-coder-7b
          quantization: awq
          gpu: RTX 4090
          gpu_count: 1
          provider: runpod
          pricing: spot
          hours: 1.4
          cost_usd: 0.48
    intent:
      description:
        - Where the task estimate came from (C(source) is V(llm) or V(file)), the C(model), the
          model's C(reasoning), the C(tasks), the C(cost_drivers) and the C(notes) about what
          validation mapped or clamped.
      type: dict
    totals:
      description: Total hours and cost of the plan.
      type: dict
    checks:
      description: Whether budget, deadline and quality hold.
      type: dict
    plan:
      description: The whole plan, only with O(include_plan=true).
      type: dict
"""

import os

from ansible.errors import AnsibleError, AnsibleOptionsError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError,
    load_blueprint,
    validate_blueprint,
)
from ansible_collections.llmops.codestack.plugins.module_utils._intent import (
    IntentError,
    load_intent_file,
    request_intent,
)

from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
    CatalogError,
    load_catalog,
)
from ansible_collections.llmops.codestack.plugins.module_utils._planner import (
    PlanError,
    build_plan,
)

ROLES = ("architect", "coder", "debugger", "reviewer")


def role_choices(plan):
    """Flatten the plan to what was chosen per role (GPU tier and model)."""
    deployments = dict((d.get("name"), d) for d in plan.get("deployments", []))
    choices = {}
    for role in ROLES:
        entry = plan.get("roles", {}).get(role)
        if not entry:
            continue
        dep = deployments.get(entry.get("deployment"), {})
        gpu = dep.get("gpu") or {}
        model = dep.get("model") or {}
        choices[role] = {
            "alias": entry.get("alias", role),
            "deployment": entry.get("deployment"),
            "model": model.get("key"),
            "hf_repo": model.get("hf_repo"),
            "quantization": model.get("quantization"),
            "engine": dep.get("engine"),
            "gpu": gpu.get("name"),
            "gpu_count": gpu.get("count"),
            "vram_gb": gpu.get("vram_gb"),
            "provider": dep.get("provider"),
            "pricing": dep.get("pricing"),
            "offer_id": dep.get("offer_id"),
            "region": dep.get("region"),
            "price_per_hour_usd": dep.get("price_per_hour_usd"),
            "hours": entry.get("hours"),
            "cost_usd": entry.get("cost_usd"),
        }
    return choices


class LookupModule(LookupBase):

    def _blueprint(self, terms, variables):
        given = self.get_option("blueprint")
        if terms and given is not None:
            raise AnsibleOptionsError("give the blueprint either as the term or as blueprint=, "
                                      "not both")
        if len(terms) > 1:
            raise AnsibleOptionsError("one blueprint per lookup; got %d terms" % len(terms))
        source = terms[0] if terms else given
        if source is None:
            raise AnsibleOptionsError("no blueprint: pass a blueprint file as the term or "
                                      "blueprint=<path or mapping>")
        try:
            if isinstance(source, dict):
                return validate_blueprint(dict(source))
            if not isinstance(source, str):
                raise AnsibleOptionsError("blueprint must be a file path or a mapping, got %s"
                                          % type(source).__name__)
            found = self.find_file_in_search_path(variables or {}, "files", source,
                                                  ignore_missing=True)
            return load_blueprint(found or source)
        except BlueprintError as exc:
            raise AnsibleOptionsError(to_native(exc))

    def _intent(self, blueprint):
        intent_file = self.get_option("intent_file")
        model = self.get_option("model")
        if intent_file:
            try:
                return load_intent_file(intent_file, blueprint)
            except IntentError as exc:
                raise AnsibleOptionsError(to_native(exc))
        if not model:
            raise AnsibleOptionsError(
                "no intent model: set model= (a LiteLLM model such as 'litellm_proxy/intent' with "
                "api_base=, or CODESTACK_INTENT_MODEL) or give intent_file=")
        prompts_dir = self.get_option("prompts_dir")
        if prompts_dir and not os.path.isfile(os.path.join(prompts_dir, "intent.md")):
            raise AnsibleOptionsError("prompts_dir %s has no intent.md" % prompts_dir)
        extra = {"max_tokens": self.get_option("max_tokens")}
        if self.get_option("temperature") is not None:
            extra["temperature"] = self.get_option("temperature")
        try:
            return request_intent(
                blueprint, model, api_base=self.get_option("api_base"),
                api_key=self.get_option("api_key"), timeout=self.get_option("timeout"),
                prompts_dir=prompts_dir, structured=self.get_option("structured"), **extra)
        except IntentError as exc:
            raise AnsibleError(to_native(exc))

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if self.get_option("timeout") <= 0 or self.get_option("max_tokens") <= 0:
            raise AnsibleOptionsError("timeout and max_tokens must be positive")
        blueprint = self._blueprint(terms or [], variables)
        try:
            catalog = load_catalog(self.get_option("catalog"))
        except CatalogError as exc:
            raise AnsibleOptionsError("catalog: %s" % to_native(exc))
        intent = self._intent(blueprint)
        try:
            plan = build_plan(blueprint, intent, catalog)
        except PlanError as exc:
            raise AnsibleError("planning failed: %s" % to_native(exc))
        result = {
            "roles": role_choices(plan),
            "intent": intent,
            "totals": plan.get("totals"),
            "checks": plan.get("checks"),
        }
        if self.get_option("include_plan"):
            result["plan"] = plan
        return [result]
