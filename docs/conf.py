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

# MathJax from the docs extra (jupyter-server-mathjax ships MathJax 2.7), copied into the
# build so formulas render offline too; the CDN default of Sphinx when it is missing.
def _local_mathjax() -> bool:
    import importlib.util
    import shutil

    spec = importlib.util.find_spec("jupyter_server_mathjax")
    if spec is None or not spec.submodule_search_locations:
        return False
    source = Path(spec.submodule_search_locations[0]) / "static"
    target = HERE / "_generated" / "static" / "mathjax"
    if not (target / "MathJax.js").is_file():
        shutil.copytree(source, target, dirs_exist_ok=True)
    return True


if _local_mathjax():
    html_static_path.append("_generated/static")
    mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
    myst_update_mathjax = False  # MyST's settings are MathJax 3's

# The heavy optional imports are real (the examples run), so autodoc needs nothing mocked.
nitpicky = False
