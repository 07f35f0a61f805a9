"""Sphinx configuration of the dpa2 documentation.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html``. Every page
is re-read on every build (so every ```python example runs, see ``_ext/exec_examples``),
the configuration reference and the data-flow figure are generated from the code first.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT / "src"), str(HERE / "_ext"), str(HERE / "_scripts")]
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

project = "dpa2"
author = "the dpa2 developers"
copyright = "the dpa2 developers; BSD-3-Clause"
release = version = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "exec_examples",
    "generate",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_generated", "performance.md",
                    "Thumbs.db", ".DS_Store"]
templates_path = []
html_static_path = ["_static"]
html_css_files = ["dpa2.css"]

myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = "dpa2"
html_theme_options = {"navigation_with_keys": True, "sidebar_hide_name": False}

autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
toc_object_entries = False
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True
autosummary_generate = False
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
python_use_unqualified_type_names = True

# The heavy optional imports are real (the examples run), so autodoc needs nothing mocked.
nitpicky = False
