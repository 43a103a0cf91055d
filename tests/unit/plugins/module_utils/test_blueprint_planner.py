"""Blueprint validation: each bad input is one message naming the field and the fix."""

import os

import pytest
import yaml

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError,
    load_blueprint,
    validate_blueprint,
)

from _planner_helpers import BLUEPRINTS, blueprint


@pytest.mark.parametrize("name", sorted(os.listdir(BLUEPRINTS)))
def test_examples_are_valid(name):
    bp = load_blueprint(os.path.join(BLUEPRINTS, name))
    assert bp.features


def _without(path):
    data = blueprint()
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return data


def _with(path, value):
    data = blueprint()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize("data, field, words", [
    (_without(["project"]), "project", ["Field required", "fix: add it"]),
    (_without(["constraints", "deadline_hours"]), "constraints.deadline_hours", ["add it"]),
    (_with(["features"], []), "features", ["at least 1"]),
    (_with(["constraints", "budget_usd"], -5), "constraints.budget_usd",
     ["greater than 0", "(got -5)", "positive number"]),
    (_with(["constraints", "providers"], ["aws"]), "constraints.providers[0]",
     ["'aws'", "use one of"]),
    (_with(["constraints", "deadline_hours"], "soon"), "constraints.deadline_hours",
     ["'soon'", "right type"]),
    (_with(["features"], "everything"), "features", ["right type"]),
    (_with(["constraints", "quality"], "perfect"), "constraints.quality", ["'perfect'"]),
    (_with(["constraints", "budget_eur"], 10), "constraints", ["exactly one of budget_usd"]),
    (_with(["project", "name"], "My Project"), "project.name", ["lowercase"]),
    (_with(["colour"], "blue"), "colour", ["remove it"]),
])
def test_bad_blueprints(data, field, words):
    with pytest.raises(BlueprintError) as info:
        validate_blueprint(data)
    message = str(info.value)
    assert message.startswith("blueprint field '%s'" % field), message
    assert info.value.field == field
    for word in words:
        assert word in message, message


def test_unreadable_file(tmp_path):
    with pytest.raises(BlueprintError, match="cannot read blueprint file .*nope.yml"):
        load_blueprint(str(tmp_path / "nope.yml"))


def test_invalid_yaml_and_not_a_mapping(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("project: [\n")
    with pytest.raises(BlueprintError, match="not valid YAML"):
        load_blueprint(str(path))
    path.write_text(yaml.safe_dump(["a", "b"]))
    with pytest.raises(BlueprintError, match="must be a YAML mapping"):
        load_blueprint(str(path))


def test_every_problem_is_reported_at_once():
    data = blueprint()
    data["constraints"]["budget_usd"] = -1
    data["constraints"]["quality"] = "perfect"
    del data["project"]["description"]
    with pytest.raises(BlueprintError) as info:
        validate_blueprint(data)
    message = str(info.value)
    for field in ("constraints.budget_usd", "constraints.quality", "project.description"):
        assert "blueprint field '%s'" % field in message, message
    assert "(3 problems in all)" in message
    assert len(info.value.problems) == 3


@pytest.mark.parametrize("path, wrong, right", [
    ([], "featuers", "features"),
    (["constraints"], "deadline_hour", "deadline_hours"),
    (["constraints"], "budget_usdd", "budget_usd"),
    (["project"], "descripton", "description"),
])
def test_misspelled_keys_get_a_did_you_mean(path, wrong, right):
    data = blueprint()
    node = data
    for key in path:
        node = node[key]
    node[wrong] = node.get(right, "x")
    with pytest.raises(BlueprintError) as info:
        validate_blueprint(data)
    assert "'%s'" % ".".join(path + [wrong]) in str(info.value)
    assert "did you mean '%s'" % right in str(info.value)


def test_non_utf8_blueprint_names_the_file(tmp_path):
    path = tmp_path / "latin1.yml"
    path.write_bytes("project: {name: caf\xe9}\n".encode("latin-1"))
    with pytest.raises(BlueprintError) as info:
        load_blueprint(str(path))
    assert str(path) in str(info.value) and "not UTF-8" in str(info.value)
    assert "0xe9" in str(info.value)
