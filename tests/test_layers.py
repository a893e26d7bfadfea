"""The package's layers import one way down.

Every module of ``nirjax`` (and of ``kernels/``, installed as ``nirjax.kernels``) is parsed,
and every import in it is collected, at module level and inside functions alike (a lazy
import inside a function is still a dependency). Each module belongs to one layer; an
import of a module in a higher layer is a back-edge and fails the test::

    errors, limits, examples  <-  kernels  <-  graph  <-  semantics  <-  rules  <-  compiler  <-  io
        <-  {api, train, analysis, lowering, cost}  <-  plot  <-  nirjax (the root)  <-  cli

Modules of one layer may import each other's packages as long as no cycle forms between
packages. A new top-level module must be given a layer here before it can exist.

Two rules of content ride along: ``nirjax.graph`` is plain Python (no JAX), and the kernels
know nothing of the ``nir`` package or of graphs.
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent

LAYERS = (
    ("nirjax.errors", "nirjax.limits", "nirjax.examples", "nirjax.progress"),
    ("nirjax.kernels",),
    ("nirjax.graph",),
    ("nirjax.semantics",),
    ("nirjax.rules",),
    ("nirjax.compiler",),
    ("nirjax.io",),
    ("nirjax.api", "nirjax.train", "nirjax.analysis", "nirjax.lowering", "nirjax.cost"),
    ("nirjax.plot",),
    ("nirjax",),  # the root package: re-exports the public API
    ("nirjax.cli",),
)


def _modules() -> dict:
    """Module name -> (file, is a package ``__init__``), for nirjax/ and kernels/."""
    found = {}
    for base, prefix in ((ROOT / "nirjax", "nirjax"), (ROOT / "kernels", "nirjax.kernels")):
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            init = parts[-1] == "__init__"
            if init:
                parts = parts[:-1]
            found[".".join([prefix] + parts)] = (path, init)
    return found


MODULES = _modules()


def _package(name: str) -> str:
    """The layer unit a module belongs to: ``nirjax.<first part>`` (or the root)."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else name


def layer_of(name: str) -> int:
    """The index in :data:`LAYERS` of the module ``name`` (ValueError if it has none)."""
    unit = _package(name)
    for rank, members in enumerate(LAYERS):
        if unit in members:
            return rank
    raise ValueError(f"module {name!r} is in no layer: add {unit!r} to LAYERS in {__file__}")


def imports_of(name: str) -> list:
    """``(imported module, line)`` for every import in module ``name``, anywhere in its body.

    Relative imports are resolved; ``from pkg import x`` counts as importing ``pkg.x`` when
    that is a module, else ``pkg``.
    """
    path, init = MODULES[name]
    tree = ast.parse(path.read_text(), str(path))
    package = name if init else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub if sub in MODULES else module, node.lineno))
    return out


def internal_edges() -> list:
    """``(importer, imported, line)`` for every import between nirjax modules."""
    edges = []
    for name in MODULES:
        for target, line in imports_of(name):
            if target == "nirjax" or target.startswith("nirjax."):
                edges.append((name, target, line))
    return edges


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


def test_no_import_goes_up_a_layer():
    """The import-layer rule: no module imports a module of a higher layer."""
    back = [f"{src} (layer {layer_of(src)}) imports {dst} (layer {layer_of(dst)}) at line {line}"
            for src, dst, line in internal_edges() if layer_of(dst) > layer_of(src)]
    assert not back, "back-edges:\n" + "\n".join(back)


def test_packages_of_one_layer_form_no_cycle():
    graph: dict = {}
    for src, dst, _ in internal_edges():
        a, b = _package(src), _package(dst)
        if a != b and layer_of(src) == layer_of(dst):
            graph.setdefault(a, set()).add(b)

    def reaches(a, b, seen=()):
        return any(n == b or (n not in seen and reaches(n, b, seen + (n,))) for n in graph.get(a, ()))

    cycles = sorted(a for a in graph if reaches(a, a))
    assert not cycles, f"import cycle between packages of one layer: {cycles}"


def test_graph_analysis_is_plain_python():
    bad = [(name, target) for name in MODULES if _package(name) == "nirjax.graph"
           for target, _ in imports_of(name) if target.split(".")[0] in ("jax", "jaxlib")]
    assert not bad, bad


def test_kernels_know_no_graphs():
    bad = [(name, target) for name in MODULES if _package(name) == "nirjax.kernels"
           for target, _ in imports_of(name) if target.split(".")[0] == "nir"]
    assert not bad, bad


def test_the_rule_catches_a_back_edge(tmp_path):
    """The walker sees imports inside functions and resolves relative imports."""
    source = "def f():\n    from ..compiler import CompiledGraph\n"
    path = tmp_path / "m.py"
    path.write_text(source)
    MODULES["nirjax.rules.probe"] = (path, False)
    try:
        targets = [t for t, _ in imports_of("nirjax.rules.probe")]
        assert targets == ["nirjax.compiler"]
        assert layer_of("nirjax.compiler") > layer_of("nirjax.rules.probe")
    finally:
        del MODULES["nirjax.rules.probe"]


def test_pyproject_lists_every_package():
    """A non-editable install ships exactly the packages pyproject.toml lists: every package
    directory of nirjax/ (and kernels/, as nirjax.kernels) must be listed."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {name for name, (_, init) in MODULES.items() if init}
    assert found - listed == set(), f"packages missing from pyproject.toml: {sorted(found - listed)}"
    assert listed - found == set(), f"pyproject.toml lists packages that do not exist: {sorted(listed - found)}"
