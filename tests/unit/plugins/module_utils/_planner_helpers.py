"""Shared fixtures data for the planner unit tests."""

import copy
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))))
BLUEPRINTS = os.path.join(REPO, "blueprints")

BASE_BLUEPRINT = {
    "project": {"name": "demo", "description": "A demo project."},
    "features": [
        {"name": "core", "description": "The core feature.", "priority": "must",
         "complexity": "medium"},
        {"name": "extra", "description": "Nice to have.", "priority": "could",
         "complexity": "high"},
        {"name": "polish", "description": "Should have.", "priority": "should",
         "complexity": "low"},
    ],
    "constraints": {"budget_usd": 50, "deadline_hours": 24, "quality": "standard",
                    "providers": ["runpod", "vast"]},
}


def blueprint(**constraints):
    data = copy.deepcopy(BASE_BLUEPRINT)
    data["constraints"].update(constraints)
    return data


def intent(tasks, source="file"):
    return {"source": source, "model": None, "reasoning": "test", "tasks": tasks,
            "cost_drivers": []}


def task(role, feature, tokens_in, tokens_out):
    return {"role": role, "feature": feature, "title": "%s %s" % (role, feature),
            "complexity": "medium", "input_tokens": tokens_in, "output_tokens": tokens_out}
