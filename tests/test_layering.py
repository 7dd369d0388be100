"""The layering the architecture promises, read from the source: nothing below the config imports it or takes a
StudyConfig, and stored attribute names are spelled in study/schema.py only."""

from __future__ import annotations

import ast
from pathlib import Path

from study import schema

ROOT = Path(__file__).resolve().parents[1]
ABOVE_THE_CONFIG = {"study/config.py", "study/pipeline.py", "study/cli.py"}   # and study/commands/
STORED = {v for k, v in vars(schema).items() if k.isupper() and isinstance(v, str) and k not in ("COMPUTE", "DATA")}


def _modules():
    for package in ("study", "search_spaces", "analysis"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel not in ABOVE_THE_CONFIG and not rel.startswith("study/commands/"):
                yield rel, ast.parse(path.read_text(), rel)


def config_uses(tree) -> list[int]:
    """Lines that import study.config or take a StudyConfig argument."""
    lines = []
    for node in ast.walk(tree):
        if ((isinstance(node, ast.ImportFrom) and node.module == "study.config")
                or (isinstance(node, ast.Import) and any(a.name == "study.config" for a in node.names))
                or (isinstance(node, ast.arg) and node.annotation is not None
                    and "StudyConfig" in ast.unparse(node.annotation))):
            lines.append(node.lineno)
    return lines


def stored_literals(tree) -> list[int]:
    """Lines that read or write a stored attribute by its literal name (user_attrs[...], .get(...), set_user_attr)."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and "user_attrs" in ast.unparse(node.value):
            if isinstance(node.slice, ast.Constant) and node.slice.value in STORED:
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            reads = node.func.attr == "get" and "user_attrs" in ast.unparse(node.func.value)
            if (reads or node.func.attr == "set_user_attr") and isinstance(node.args[0], ast.Constant) \
                    and node.args[0].value in STORED:
                lines.append(node.lineno)
    return lines


def test_no_module_below_the_config_imports_it_or_takes_a_study_config():
    assert {rel: lines for rel, tree in _modules() if (lines := config_uses(tree))} == {}


def test_stored_attribute_names_are_spelled_in_the_schema_only():
    found = {rel: lines for rel, tree in _modules() if rel != "study/schema.py" and (lines := stored_literals(tree))}
    assert found == {}


def test_both_checks_find_what_they_look_for():
    assert config_uses(ast.parse("from study.config import resolve\ndef f(c: StudyConfig): pass\n")) == [1, 2]
    assert config_uses(ast.parse("import study.configx\n")) == []
    snippet = 't.user_attrs["val_loss"]\nt.user_attrs.get("seed")\nt.set_user_attr("claims", 1)\nt.user_attrs["x"]\n'
    assert stored_literals(ast.parse(snippet)) == [1, 2, 3]
