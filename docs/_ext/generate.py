"""Build-time generation: the configuration reference and the data-flow figure.

Both are written into ``docs/_generated/`` (git-ignored) before Sphinx reads any page,
from the code itself (``reference_tables``, ``dataflow``). Every page is re-read on
every build so that ``exec_examples`` runs each example against the current code.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

__all__ = ["generate", "setup"]

logger = logging.getLogger(__name__)


def generate(app: Sphinx) -> None:
    import dataflow
    import reference_tables

    out = Path(app.srcdir) / "_generated"
    reference_tables.write_all(out)
    _performance(Path(app.srcdir), out)
    figure = out / "dataflow.png"
    dataflow.draw(figure)
    logger.info("generate: configuration reference and %s", figure.name)


def _performance(srcdir: Path, out: Path) -> None:
    """``docs/performance.md`` (written by the benchmark suite) as the benchmarks page's
    include, or a note saying how to produce it when no run has written it yet."""
    source = srcdir / "performance.md"
    if source.is_file():
        # the copy lies one folder down: keep its relative links and images pointing home
        text = re.sub(r"(\]\()(?![a-z]+:|/|#)", r"\1../", source.read_text())
    else:
        text = ("*No benchmark-suite report yet: `docs/performance.md` is written by "
                "`python benchmarks/bench_suite.py` (see `benchmarks/`).*\n")
    target = out / "performance.md"
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


def _everything(app, env, added, changed, removed):
    return sorted(set(env.found_docs) - set(added) - set(changed))


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", generate)
    app.connect("env-get-outdated", _everything)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
