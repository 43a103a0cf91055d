import pytest

from ansible_collections.llmops.codestack.plugins.module_utils._blueprint import (
    BlueprintError, load_blueprint, validate_blueprint)


def good():
    return {
        "project": {"name": "todo-api", "description": "A REST API for todos"},
        "features": [{"name": "crud", "description": "CRUD endpoints", "priority": "must"}],
        "constraints": {"budget_usd": 20, "deadline_hours": 8},
    }


def with_change(path, value):
    data = good()
    node = data
    *parents, last = path
    for key in parents:
        node = node[key]
    if value is KeyError:
        del node[last]
    else:
        node[last] = value
    return data


def test_good_blueprint_has_defaults():
    bp = validate_blueprint(good())
    assert bp.constraints.quality == "standard"
    assert bp.constraints.providers == ["local"]
    assert bp.ide == "code-server-kilocode"


@pytest.mark.parametrize("path,value,field,words", [
    (("project", "description"), KeyError, "project.description", "add it"),
    (("constraints", "budget_usd"), -5, "constraints.budget_usd", "positive"),
    (("constraints", "providers"), ["aws"], "constraints.providers[0]", "one of"),
    (("constraints", "deadline_hours"), "soon", "constraints.deadline_hours", "right type"),
    (("constraints", "quality"), "perfect", "constraints.quality", "one of"),
    (("project", "name"), "Bad Name", "project.name", "lowercase"),
    (("features",), [], "features", "at least 1"),
    (("constraints", "budget_usd"), KeyError, "constraints", "exactly one of budget_usd"),
    (("constraints", "colour"), "blue", "constraints.colour", "remove it"),
])
def test_bad_input_names_field_and_fix(path, value, field, words):
    with pytest.raises(BlueprintError) as err:
        validate_blueprint(with_change(path, value))
    assert err.value.field == field
    assert words in str(err.value)
    assert str(err.value).startswith("blueprint field '%s'" % field)


def test_both_budgets_rejected():
    data = with_change(("constraints", "budget_eur"), 10)
    with pytest.raises(BlueprintError, match="exactly one"):
        validate_blueprint(data)


def test_duplicate_feature_names_rejected():
    data = good()
    data["features"].append(dict(data["features"][0]))
    with pytest.raises(BlueprintError, match="unique"):
        validate_blueprint(data)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(BlueprintError, match="cannot read blueprint file"):
        load_blueprint(str(tmp_path / "missing.yml"))
    broken = tmp_path / "broken.yml"
    broken.write_text("project: [unclosed\n")
    with pytest.raises(BlueprintError, match="not valid YAML"):
        load_blueprint(str(broken))
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("just a string\n")
    with pytest.raises(BlueprintError, match="YAML mapping"):
        load_blueprint(str(scalar))
