"""The core stays pure and its arrows point one way.

Purity: every module under ``model/`` and every function of the core whose first
parameter is ``xp`` (the array-API code of ``neighbors/``, ``training/``, ...) runs on
traced arrays, so it has no in-place array updates, no boolean-mask indexing and no
value-dependent shapes. Host-side Python containers (dicts built in the same function)
may be filled item by item.

Arrows: ``model <- neighbors <- io <- training``; the core never imports a shim or the
command; the shims never import a private name of the core.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
CORE = SRC / "dpa2_core"
FOLDERS = ("model", "neighbors", "io", "training")  # in arrow order: each may use the earlier
SHAPE_DEPENDENT = {"nonzero", "argwhere", "unique", "unique_values", "unique_counts",
                   "unique_inverse", "unique_all", "flatnonzero"}


def _rel(path: Path) -> str:
    return str(path.relative_to(SRC))


def _dict_names(fn: ast.AST) -> set[str]:
    """Names bound to a dict display, comprehension or ``dict(...)`` inside ``fn``."""
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            value = node.value
            is_dict = isinstance(value, ast.Dict | ast.DictComp) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Name)
                and value.func.id in ("dict", "defaultdict")) or (
                isinstance(value, ast.Call) and isinstance(value.func, ast.Attribute)
                and isinstance(value.func.value, ast.Name) and value.func.value.id == "dict")
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if is_dict and isinstance(t, ast.Name)}
    return names


def _base(node: ast.AST) -> str | None:
    while isinstance(node, ast.Subscript | ast.Attribute):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def impurities(fn: ast.AST) -> list[str]:
    """In-place updates, boolean-mask indexing and value-dependent shapes inside ``fn``."""
    dicts, found = _dict_names(fn), []
    for node in ast.walk(fn):
        if isinstance(node, ast.AugAssign):  # x += y updates a numpy array in place
            found.append(f"{node.lineno}: augmented assignment")
        if isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Subscript) and _base(t) not in dicts:
                    found.append(f"{node.lineno}: item assignment (in-place update)")
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            index = node.slice
            if isinstance(index, ast.Compare | ast.BoolOp) or (
                    isinstance(index, ast.UnaryOp) and isinstance(index.op, ast.Not | ast.Invert)):
                found.append(f"{node.lineno}: boolean-mask indexing")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
            if name in SHAPE_DEPENDENT or (name == "where" and len(node.args) == 1):
                found.append(f"{node.lineno}: {name} (value-dependent shape)")
    return sorted(found, key=lambda f: int(f.split(':')[0]))


def _traced_functions(path: Path) -> list[ast.AST]:
    tree = ast.parse(path.read_text())
    if path.parent.name == "model":
        return [tree]
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
            and n.args.args and n.args.args[0].arg == "xp"]


TRACED = [p for p in sorted(CORE.rglob("*.py")) if _traced_functions(p)]


def test_the_lint_sees_model_and_neighbors():
    names = {_rel(p) for p in TRACED}
    assert {"dpa2_core/model/repformer.py", "dpa2_core/model/config.py",
            "dpa2_core/neighbors/reference.py", "dpa2_core/neighbors/extension.py"} <= names


@pytest.mark.parametrize("path", TRACED, ids=_rel)
def test_traced_code_is_pure(path):
    found = [f"{_rel(path)}:{x}" for fn in _traced_functions(path) for x in impurities(fn)]
    assert not found, "\n".join(found)


def test_the_lint_catches_impurities():
    code = ("def f(xp, x, m):\n    x[0] = 1\n    x += 1\n    y = x[m > 0]\n"
            "    z = xp.nonzero(m)\n    d = {}\n    d['a'] = x\n    return x\n")
    found = impurities(ast.parse(code))
    assert [f.split(": ")[1] for f in found] == [
        "item assignment (in-place update)", "augmented assignment", "boolean-mask indexing",
        "nonzero (value-dependent shape)"]


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in ``path`` (relative ones resolved)."""
    package = ".".join(path.relative_to(SRC).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level:
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            out += [(node.lineno, f"{module}.{a.name}") for a in node.names]
            out.append((node.lineno, module))
    return out


def _arrow_violations(path: Path) -> list[str]:
    parts = path.relative_to(SRC).parts
    bad = []
    for line, module in _imports(path):
        top = module.split(".")
        where = f"{_rel(path)}:{line} imports {module}"
        if parts[0] == "dpa2_core":
            # the one exception: _compat.torch_load reads torch-pickled model files
            lazy_torch = parts[1:] == ("_compat.py",) and top[0] == "torch"
            if top[0] in ("dpa2_torch", "dpa2_jax", "dpa2_cli", "dpa2_bench", "torch", "jax",
                          "jaxlib") \
                    and not lazy_torch:
                bad.append(where)
            if len(parts) > 2 and parts[1] in FOLDERS and len(top) > 1 and top[0] == "dpa2_core" \
                    and top[1] in FOLDERS and FOLDERS.index(top[1]) > FOLDERS.index(parts[1]):
                bad.append(where + f" (against the arrow {' <- '.join(FOLDERS)})")
        elif parts[0] in ("dpa2_torch", "dpa2_jax"):
            other = "dpa2_jax" if parts[0] == "dpa2_torch" else "dpa2_torch"
            if top[0] in (other, "dpa2_cli", "dpa2_bench"):
                bad.append(where)
            if top[0] == "dpa2_core" and any(p.startswith("_") for p in top[1:]):
                bad.append(where + " (a private name of the core)")
    return bad


def test_arrows_point_one_way():
    found = [x for p in sorted(SRC.rglob("*.py")) for x in _arrow_violations(p)]
    assert not found, "\n".join(found)


def test_the_arrow_test_catches_violations(tmp_path, monkeypatch):
    fake = SRC / "dpa2_core" / "model" / "_fake.py"
    text = "from ..training import loss\nimport dpa2_torch\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text)
    assert len(_arrow_violations(fake)) == 3  # training (module and name), dpa2_torch


def test_importing_the_core_imports_no_backend():
    code = ("import sys, dpa2_core; bad = [m for m in ('torch', 'jax', 'dpa2_torch', 'dpa2_jax')"
            " if m in sys.modules]; print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == ""


@pytest.mark.parametrize("package", ["dpa2_core", "dpa2_torch", "dpa2_jax", "dpa2_cli",
                                     "dpa2_bench"])
def test_every_module_declares_all(package):
    missing = [_rel(p) for p in sorted((SRC / package).rglob("*.py"))
               if "__all__" not in p.read_text()]
    assert not missing, missing


def _local_sibling_imports(path: Path) -> list[str]:
    """Relative imports inside functions. Two kinds break a cycle or keep an optional
    dependency optional, and stay: the package ``__init__`` itself (``from .. import
    __version__``: the ``__init__`` imports the module) and a module's ``__getattr__``
    (attributes that need an extra, imported on first use)."""
    bad = []
    for fn in ast.walk(ast.parse(path.read_text())):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef) or \
                fn.name == "__getattr__":
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom) and node.level and node.module:
                bad.append(f"{_rel(path)}:{node.lineno} {fn.name}() imports "
                           f"{'.' * node.level}{node.module}")
    return bad


def test_sibling_imports_are_at_the_top():
    found = [x for p in sorted(SRC.rglob("*.py")) for x in _local_sibling_imports(p)]
    assert not found, "\n".join(sorted(set(found)))


def test_the_local_import_lint_catches_one(monkeypatch):
    text = ("def f():\n    from .a import b\n    from .. import __version__\n"
            "def __getattr__(name):\n    from .c import d\n")
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: text)
    assert len(_local_sibling_imports(SRC / "dpa2_core" / "x.py")) == 1
