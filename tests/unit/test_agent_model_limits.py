"""agent_model_limits: the context window and output cap the coding agents declare per alias."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.llmops.codestack.plugins.filter.stack import agent_model_limits

ALIASES = {"architect": "architect", "coder": "coder", "debugger": "coder", "reviewer": "reviewer"}


def _plan():
    return {
        "roles": {
            "architect": {"alias": "architect", "deployment": "arch-api"},
            "coder": {"alias": "coder", "deployment": "coder-gpu"},
            "debugger": {"alias": "coder", "deployment": "coder-gpu"},
            "reviewer": {"alias": "reviewer", "deployment": "local-cpu"},
        },
        "deployments": [
            {"name": "arch-api", "api": {"context": 131072}, "model": {}},
            {"name": "coder-gpu", "serving": {"max_model_len": 16384}, "model": {"max_model_len": 16384},
             # A capacity fallback started with a smaller window bounds what the alias may ask for.
             "alternatives": [{"serving": {"max_model_len": 12288}}, {"model": {"max_model_len": 32768}}]},
            {"name": "local-cpu", "model": {"max_model_len": 8192}},
        ],
    }


def test_limits_follow_the_served_windows():
    assert agent_model_limits(_plan(), ALIASES) == {
        "architect": {"context": 131072, "output": 16384},   # a quarter, capped at 16384
        "coder": {"context": 12288, "output": 3072},
        "reviewer": {"context": 8192, "output": 2048},
    }


def test_overrides_win_field_by_field_and_unknown_aliases_are_left_out():
    limits = agent_model_limits({}, {"architect": "a", "coder": "c", "debugger": "c", "reviewer": "r"},
                                {"a": {"context": 8192}, "c": {"context": 4096, "output": 512}})
    assert limits == {"a": {"context": 8192, "output": 2048}, "c": {"context": 4096, "output": 512}}
    assert agent_model_limits(_plan(), ALIASES, {"reviewer": {"output": 1000}},
                              output_share=0.5, output_max=4096)["reviewer"] == {"context": 8192, "output": 1000}


@pytest.mark.parametrize("overrides, message", [
    ({"coder": {"context": 0}}, "context of coder must be a positive integer"),
    ({"coder": {"output": "many"}}, "output of coder must be a positive integer"),
    ({"coder": {"context": 1000, "output": 1000}}, "output of coder (1000) must be smaller than its context (1000)"),
    ({"coder": [1]}, "limits of coder must be {context, output}"),
    ({"debugger": {"context": 8192}}, "no role routes to debugger (the aliases are architect, coder, reviewer)"),
])
def test_bad_limits_are_named(overrides, message):
    with pytest.raises(AnsibleFilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        agent_model_limits(_plan(), ALIASES, overrides)


def test_bad_arguments():
    with pytest.raises(AnsibleFilterError, match="expected {role: alias}"):
        agent_model_limits(_plan(), ["coder"])
    with pytest.raises(AnsibleFilterError, match="output_share must be between 0 and 1"):
        agent_model_limits(_plan(), ALIASES, output_share=1)
