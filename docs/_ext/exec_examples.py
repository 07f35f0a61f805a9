"""Run every ```python block of every page at build time, so a stale example fails the build.

The blocks of one page run in order in one namespace, with the repository root as the
working directory (so ``../shared/...`` resolves as in the tests). An exception is
reported as a warning at the block's line (the build runs with ``-W``, so it fails) and
the rest of that page is skipped. What a block prints is shown below it on the page.

Blocks in another language (```text, ```bash, ```pycon) are not run. A page that must
not run (for example one that documents a GPU-only path) sets ``exec_examples: false``
in its front matter and says why there.
"""

from __future__ import annotations

import contextlib
import io
import os
import time
import traceback
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

__all__ = ["run_examples", "setup"]

logger = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def run_examples(app: Sphinx, doctree: nodes.document) -> None:
    """Execute the page's python blocks; append their output; warn on the first error."""
    docname = app.env.docname
    meta = app.env.metadata.get(docname, {})
    if str(meta.get("exec_examples", "true")).lower() == "false":
        return
    blocks = [n for n in doctree.findall(nodes.literal_block)
              if n.get("language") in ("python", "python3", "py")]
    if not blocks:
        return
    namespace: dict = {"__name__": f"docs.{docname.replace('/', '.')}"}
    start = time.perf_counter()
    with _cwd(ROOT):
        for node in blocks:
            out = io.StringIO()
            source = node.astext()
            try:
                code = compile(source, f"{docname}.md:{node.line}", "exec")
                with contextlib.redirect_stdout(out):
                    exec(code, namespace)  # noqa: S102  (the documentation's own examples)
            except BaseException:  # noqa: BLE001  (any failure of an example fails the build)
                tb = traceback.format_exc(limit=-3)
                logger.warning("example failed:\n%s", tb, location=node, type="exec_examples")
                return
            text = out.getvalue()
            if text.strip():
                result = nodes.literal_block(text.rstrip("\n"), text.rstrip("\n"))
                result["language"] = "text"
                result["classes"].append("example-output")
                node.parent.insert(node.parent.index(node) + 1, result)
    seconds = time.perf_counter() - start
    logger.info("exec_examples: %s, %d block(s) in %.1f s", docname, len(blocks), seconds)
    app.env.exec_examples_times = getattr(app.env, "exec_examples_times", {})
    app.env.exec_examples_times[docname] = seconds


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", run_examples)
    return {"version": "1", "parallel_read_safe": False, "parallel_write_safe": True}
