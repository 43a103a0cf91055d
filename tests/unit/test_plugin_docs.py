"""Every plugin's DOCUMENTATION, EXAMPLES and RETURN are valid YAML of the expected shape.

ansible-test sanity (ansible-doc, validate-modules, yamllint) catches the same errors, but only
in its own tier, minutes into a run; this test catches them in the inner loop
(``bash tests/run.sh fast``). It reads the strings with ``ast`` so nothing is imported.
"""

from __future__ import annotations

import ast
import pathlib

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
KINDS = ("modules", "action", "filter", "lookup", "doc_fragments", "callback", "inventory", "test")
DOC_NAMES = ("DOCUMENTATION", "EXAMPLES", "RETURN")


def _plugin_files():
    for kind in KINDS:
        folder = ROOT / "plugins" / kind
        if folder.is_dir():
            for path in sorted(folder.glob("*.py")):
                if path.name != "__init__.py":
                    yield path


def _doc_strings(tree):
    """(name, lineno, text) for module-level and class-level DOC_NAMES string constants."""
    bodies = [tree.body] + [node.body for node in tree.body if isinstance(node, ast.ClassDef)]
    for body in bodies:
        for node in body:
            if not isinstance(node, ast.Assign) or len(node.targets) != 1:
                continue
            target = node.targets[0]
            if isinstance(target, ast.Name) and target.id in DOC_NAMES:
                if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                    yield target.id, node.lineno, node.value.value


FILES = list(_plugin_files())


def test_plugins_are_found():
    # A wrong ROOT would make every parametrized case vanish silently.
    assert any(p.parent.name == "modules" for p in FILES)
    assert any(p.parent.name == "filter" for p in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_docs_are_valid_yaml(path):
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = {name: (lineno, text) for name, lineno, text in _doc_strings(tree)}
    kind = path.parent.name
    if kind in ("modules", "lookup", "doc_fragments"):
        assert "DOCUMENTATION" in docs, f"{path.name} has no DOCUMENTATION"
    for name, (lineno, text) in docs.items():
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            pytest.fail(f"{path.name}: {name} (assigned on line {lineno}) is not valid YAML: {exc}")
        if name == "EXAMPLES":
            # EXAMPLES is a list of tasks, or a comment-only text.
            assert data is None or isinstance(data, list), f"{path.name}: EXAMPLES is not a task list"
        else:
            assert isinstance(data, dict), f"{path.name}: {name} is not a mapping"
    if "DOCUMENTATION" in docs and kind in ("modules", "lookup"):
        doc = yaml.safe_load(docs["DOCUMENTATION"][1])
        for key in ("short_description", "description", "author"):
            assert key in doc, f"{path.name}: DOCUMENTATION has no {key}"
        for opt, spec in (doc.get("options") or {}).items():
            assert isinstance(spec, dict) and "description" in spec, f"{path.name}: option {opt} has no description"
