# -*- coding: utf-8 -*-
# Copyright: llmops.codestack contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The deterministic estimator: token estimates without any LLM.

Used when no intent model and no intent file are given. Its coefficients live in the catalog
(section ``estimator``, id ``default``); the formula is documented in docs/cost-model.md:

    complexity  = feature.complexity, else by description length (complexity_by_words)
    code_tokens = loc[complexity] x tokens_per_loc
    output      = code_tokens x roles[role].output_per_code_token x quality_factor[quality][role]
    input       = output x roles[role].input_per_output
    plus one "(project)" architect task: output = base + per_feature x features,
                                         input = output x project.input_per_output
    a task above max_task_input_tokens / max_task_output_tokens is split into equal parts
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    validate_blueprint,
)

ROLE_ORDER = ("architect", "coder", "debugger", "reviewer")
_TITLES = {
    "architect": "Design %s",
    "coder": "Implement %s",
    "debugger": "Test and debug %s",
    "reviewer": "Review %s",
}


def feature_complexity(feature, params):
    """The feature's complexity as given, else from its description's word count."""
    if feature.complexity:
        return feature.complexity
    words = len(feature.description.split())
    if words < params.complexity_by_words["low"]:
        return "low"
    if words < params.complexity_by_words["medium"]:
        return "medium"
    return "high"


def _split(task, params):
    """One task, or equal parts of it when it exceeds the per-task token bounds."""
    parts = max(-(-task["input_tokens"] // params.max_task_input_tokens),
                -(-task["output_tokens"] // params.max_task_output_tokens), 1)
    if parts == 1:
        return [task]
    out = []
    for index in range(parts):
        part = dict(task, title="%s (part %d/%d)" % (task["title"], index + 1, parts))
        for key in ("input_tokens", "output_tokens"):
            # spread the remainder so the parts add up to the whole
            part[key] = task[key] // parts + (1 if index < task[key] % parts else 0)
        out.append(part)
    return out


def estimate(blueprint, catalog=None):
    """Return an intent result (source "deterministic") for a blueprint (model or mapping)."""
    if isinstance(blueprint, dict):
        blueprint = validate_blueprint(blueprint)
    if catalog is None:
        from ansible_collections.llmops.codestack.plugins.module_utils._catalog import (
            load_catalog,
        )
        catalog = load_catalog()
    params = catalog.estimator["default"]
    quality = blueprint.constraints.quality
    factors = params.quality_factor.get(quality, {})
    tasks = []
    per_feature = {}
    for feature in blueprint.features:
        complexity = feature_complexity(feature, params)
        code_tokens = params.loc[complexity] * params.tokens_per_loc
        total = 0
        for role in ROLE_ORDER:
            ratio = params.roles[role]
            output = int(round(code_tokens * ratio.output_per_code_token * factors.get(role, 1.0)))
            inp = int(round(output * ratio.input_per_output))
            total += output + inp
            tasks.extend(_split({
                "role": role, "feature": feature.name, "title": _TITLES[role] % feature.name,
                "complexity": complexity, "input_tokens": inp, "output_tokens": output,
            }, params))
        per_feature[feature.name] = (total, complexity, feature.priority)
    project = params.project
    output = int(round((project.architect_output_base
                        + project.architect_output_per_feature * len(blueprint.features))
                       * factors.get("architect", 1.0)))
    tasks.insert(0, {
        "role": "architect", "feature": "(project)",
        "title": "Overall architecture of %s" % blueprint.project.name,
        "complexity": "medium", "input_tokens": int(round(output * project.input_per_output)),
        "output_tokens": output,
    })
    grand = sum(t["input_tokens"] + t["output_tokens"] for t in tasks) or 1
    drivers = sorted(per_feature.items(), key=lambda item: (-item[1][0], item[0]))
    cost_drivers = [{
        "feature": name, "share": round(total / float(grand), 4),
        "why": "%s complexity (~%d lines), priority %s: %d tokens"
               % (complexity, params.loc[complexity], priority, total),
    } for name, (total, complexity, priority) in drivers]
    return {
        "source": "deterministic",
        "model": None,
        "reasoning": "Deterministic estimate: %d feature(s) sized by complexity (lines of code x "
                     "%g tokens per line), role ratios and quality '%s' factors from catalog "
                     "estimator 'default' (as of %s)."
                     % (len(blueprint.features), params.tokens_per_loc, quality, params.as_of),
        "tasks": tasks,
        "cost_drivers": cost_drivers,
    }
