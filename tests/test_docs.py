"""The documentation covers the code: public names, config keys, the code's § references.

Fast checks on the sources of the site (the build itself runs in ``.ci/run``): every
name in the ``__all__`` of the three packages is named on its API page, every config
field and every accepted training-input key is in the generated configuration
reference, and every ``§N`` the code cites has its section in ``docs/math.md``.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


@pytest.fixture(scope="module")
def reference_tables():
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        yield importlib.import_module("reference_tables")
    finally:
        sys.path.remove(str(DOCS / "_ext"))


@pytest.mark.parametrize("package", ["dpa2_core", "dpa2_torch", "dpa2_jax"])
def test_every_public_name_is_in_the_api_reference(package):
    module = importlib.import_module(package)
    page = (DOCS / "api" / f"{package}.md").read_text()
    missing = [name for name in module.__all__
               if not re.search(rf"\b{package}\.{re.escape(name)}\b", page)]
    assert not missing, f"docs/api/{package}.md does not document {missing}"


def test_api_pages_are_in_the_toctree():
    index = (DOCS / "api" / "index.md").read_text()
    for package in ("dpa2_core", "dpa2_torch", "dpa2_jax"):
        assert re.search(rf"^{package}$", index, re.M), f"{package} missing from api/index.md"


def test_every_config_field_is_in_the_configuration_reference(reference_tables):
    import dpa2_core

    text = reference_tables.descriptor_markdown()  # raises on a field without docstring
    sections = re.split(r"^## ", text, flags=re.M)[1:]
    by_class = {s.split("`")[1]: s for s in sections}
    for cls in (dpa2_core.DPA2Config, dpa2_core.RepinitConfig, dpa2_core.RepformerConfig):
        rows = by_class[cls.__name__]
        for f in dataclasses.fields(cls):
            assert re.search(rf"^\| `{f.name}` \| ", rows, re.M), f"{cls.__name__}.{f.name}"
            doc = reference_tables.field_docs(cls)[f.name]
            assert len(doc.split()) >= 3, f"{cls.__name__}.{f.name}: docstring too thin"


def test_every_training_key_is_in_the_configuration_reference(reference_tables):
    text = reference_tables.training_markdown()  # raises on an undocumented key
    keys = reference_tables.training_keys()
    assert {"numb_steps", "training_data"} <= {k for k, _, _ in keys["training"]}
    for section, rows in keys.items():
        for key, _, _ in rows:
            assert f"| `{key}` |" in text, f"{section}.{key}"


def test_the_reference_page_includes_the_generated_tables():
    page = (DOCS / "reference" / "config.md").read_text()
    assert "_generated/config_descriptor.md" in page
    assert "_generated/config_training.md" in page


def test_every_section_the_code_cites_exists_in_the_math_page():
    cited = set()
    for path in (ROOT / "src").rglob("*.py"):
        cited |= set(re.findall(r"§(\d+(?:\.\d+)?)", path.read_text()))
    math = (DOCS / "math.md").read_text()
    assert cited, "the code cites no section: the pattern is stale"
    missing = [n for n in sorted(cited)
               if not re.search(rf"^\(sec-{n.replace('.', '-')}\)=\n#+ {re.escape(n)} ", math,
                                re.M)]
    assert not missing, f"docs/math.md has no labelled section for §{missing}"


def test_every_cli_command_and_option_is_on_the_cli_page(reference_tables):
    page = (DOCS / "guides" / "cli.md").read_text()
    commands = reference_tables.cli_commands()
    assert {"describe", "eval", "test", "train", "md", "freeze", "bench"} <= set(commands)
    for command, parser in commands.items():
        assert f"\n## `dpa2 {command}`\n" in page, f"guides/cli.md: no section for {command}"
        assert f"_generated/cli_{command}.md" in page, f"guides/cli.md: no table for {command}"
        table = reference_tables.cli_markdown(command)
        for action in parser._actions:
            for name in action.option_strings or [action.metavar or action.dest]:
                if name not in ("-h", "--help"):
                    assert f"`{name}`" in table, f"dpa2 {command}: {name} not in its table"
