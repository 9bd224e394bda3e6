"""The import order of atomsmith's packages is pinned, so that no import cycle comes back.

Every ``import`` and ``from ... import`` in ``src/atomsmith`` counts, function-local ones included (a lazy import
hides a cycle from Python, not from the design), and so does every string that names an atomsmith module (lazy
exports, ``import_module``). The checks read the source with :mod:`ast` only; nothing is imported.

* Between packages (``structures``, ``graphs``, ..., and the top-level module ``parallel``): the graph has no
  cycle, and each package imports only packages of lower layers of :data:`LAYERS`.
* Between modules: no cycle apart from the few known ones inside one package (:data:`KNOWN_MODULE_CYCLES`; they
  may shrink, never grow).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

#: atomsmith's packages from the bottom up. A package may import packages of lower layers only (not of its own).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),                                      # atomic writes, gzip, downloads, the plain-array pair search
    ("structures",),                                # Crystal, errors, conversions, CIF / extxyz / POSCAR
    ("datasets", "graphs"),                         # dataset files and caches; neighbour lists, batches
    ("metrics", "nn", "parallel", "physics"),       # CDVAE metrics; the encoder; data parallelism; SW, MD, FIRE
    ("guidance", "judging", "training"),            # shared objectives; the CHGNet judge; loop and checkpoints
    ("generators", "predictors"),                   # diffusion, the environment VAEs; property predictors
    ("pretrained",),                                # the registry of shipped models: loads generators, predictors
    ("assembly",),                                  # the MCTS assembler (uses shipped predictors)
    ("api",),                                       # the verbs: sample, infill, interpolate, assemble, predict, ...
    ("cli",),                                       # the typer app
)

#: Module cycles that exist today, each inside one package (lazy imports in methods). Do not add to them.
KNOWN_MODULE_CYCLES: tuple[frozenset[str], ...] = (
    # Crystal.to_pymatgen / from_ase & co. delegate to the conversion module, which builds Crystals
    frozenset({"atomsmith.structures.crystal", "atomsmith.structures.convert"}),
)

_MODULE_NAME = re.compile(r"atomsmith(\.[A-Za-z_]\w*)+(:[A-Za-z_]\w*)?")  # a module, or "module:attribute"

Graph = Mapping[str, Iterable[str]]


# ---------------------------------------------------------------------------------------------- the checker
def modules(src: Path, root: str = "atomsmith") -> dict[str, Path]:
    """Every module below ``src/root``: dotted name -> file (a package is its ``__init__.py``)."""
    out = {}
    for path in sorted((src / root).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def references(path: Path, module: str) -> list[tuple[str, int, bool]]:
    """``(dotted name, line, from an import statement)`` for everything ``path`` (module ``module``) imports or names.

    ``from X import a`` gives ``X.a`` (a submodule or a name in ``X``); relative imports are resolved; a string
    that is a dotted atomsmith name (lazy exports, ``import_module``) or a ``"module:attribute"`` name (the model-class
    table of :mod:`atomsmith.pretrained.kinds`) counts, but not at import time.
    """
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno, True) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            out.extend((f"{base}.{alias.name}", node.lineno, True) for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _MODULE_NAME.fullmatch(node.value):
            out.append((node.value.partition(":")[0], node.lineno, False))
    return out


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is a known module (``None``: not atomsmith's)."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def module_graph(src: Path, statements_only: bool = False) -> dict[str, dict[str, list[str]]]:
    """``{module: {imported module: ["file:line", ...]}}`` over every atomsmith module below ``src``
    (``statements_only``: leave out the modules only named in strings, which no import statement loads)."""
    known = modules(src)
    graph: dict[str, dict[str, list[str]]] = {name: {} for name in known}
    for name, path in known.items():
        for target, line, statement in references(path, name):
            resolved = _resolve(target, known)
            if resolved is None or resolved == name or (statements_only and not statement):
                continue
            where = f"{path.relative_to(src)}:{line}"
            seen = graph[name].setdefault(resolved, [])
            if where not in seen:
                seen.append(where)
    return graph


def package_of(module: str) -> str | None:
    """``atomsmith.graphs.neighbors`` -> ``graphs``; the root package ``atomsmith`` itself -> ``None``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph(graph: Mapping[str, Mapping[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
    """The module graph folded onto packages (edges inside a package and from or to the root package dropped)."""
    out: dict[str, dict[str, list[str]]] = {}
    for source, targets in graph.items():
        a = package_of(source)
        if a is None:
            continue
        out.setdefault(a, {})
        for target, where in targets.items():
            b = package_of(target)
            if b is not None and b != a:
                out[a].setdefault(b, []).extend(w for w in where if w not in out[a].get(b, ()))
    return out


def cycles(graph: Graph) -> list[frozenset[str]]:
    """The strongly connected components of ``graph`` with more than one node (or a node importing itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    nodes = set(graph) | {b for targets in graph.values() for b in targets}
    edges = {n: sorted(graph.get(n, ())) for n in nodes}

    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(edges[succ])))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in edges[node]:
                        found.append(frozenset(component))
    return found


def layer_violations(graph: Graph, layers: Iterable[Iterable[str]]) -> list[tuple[str, str]]:
    """Edges ``(a, b)`` of ``graph`` where ``b`` is not in a lower layer than ``a`` (nodes without a layer are
    reported by :func:`unlayered`)."""
    rank = {name: k for k, layer in enumerate(layers) for name in layer}
    return sorted((a, b) for a, targets in graph.items() for b in targets
                  if a in rank and b in rank and rank[b] >= rank[a])


def unlayered(graph: Graph, layers: Iterable[Iterable[str]]) -> set[str]:
    """Nodes of ``graph`` that no layer names."""
    named = {name for layer in layers for name in layer}
    return (set(graph) | {b for targets in graph.values() for b in targets}) - named


def _explain(graph: Mapping[str, Mapping[str, list[str]]], pairs: Iterable[tuple[str, str]]) -> str:
    return "\n".join(f"  {a} -> {b}: {', '.join(graph[a][b][:4])}" for a, b in pairs)


# ---------------------------------------------------------------------------------------------- the checker, tested
def test_cycles_and_layers_of_a_synthetic_graph():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a", "e"}, "e": set(), "f": {"f"}}
    assert sorted(map(sorted, cycles(graph))) == [["a", "b", "c"], ["f"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) == []
    layers = [("c",), ("b", "e"), ("a",), ("d",)]
    assert layer_violations(graph, layers) == [("c", "a")]  # a -> b and b -> c go down; c -> a goes up
    assert layer_violations({"b": {"e"}}, layers) == [("b", "e")]  # the same layer is not below
    assert unlayered(graph, layers) == {"f"}


def test_the_checker_reads_local_relative_and_lazy_imports(tmp_path):
    """A synthetic tree: ``x`` imports ``y`` inside a function, ``y`` imports ``x`` relatively; ``z`` names ``x``
    only in a lazy-export string; ``w`` imports the root package and a name from it."""
    files = {
        "atomsmith/__init__.py": "",
        "atomsmith/x/__init__.py": "",
        "atomsmith/x/m.py": "def f():\n    from atomsmith.y.n import g\n    return g\n",
        "atomsmith/y/__init__.py": "from . import n\n",
        "atomsmith/y/n.py": "from ..x import m\n\ndef g():\n    return m\n",
        "atomsmith/z/__init__.py": "_EXPORTS = {'f': 'atomsmith.x.m'}\n",
        "atomsmith/w.py": "import atomsmith\nfrom atomsmith import z\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    graph = module_graph(tmp_path)
    assert set(graph["atomsmith.x.m"]) == {"atomsmith.y.n"}
    assert set(graph["atomsmith.y.n"]) == {"atomsmith.x.m"}
    assert set(graph["atomsmith.y"]) == {"atomsmith.y.n"}
    assert set(graph["atomsmith.z"]) == {"atomsmith.x.m"}
    assert module_graph(tmp_path, statements_only=True)["atomsmith.z"] == {}
    packages = package_graph(graph)
    assert {a: set(b) for a, b in packages.items()} == {"x": {"y"}, "y": {"x"}, "z": {"x"}, "w": {"z"}}
    assert cycles(packages) == [frozenset({"x", "y"})]
    assert packages["x"]["y"] == ["atomsmith/x/m.py:2"]


# ---------------------------------------------------------------------------------------------- atomsmith itself
def test_every_package_has_a_layer():
    packages = package_graph(module_graph(SRC))
    assert not unlayered(packages, LAYERS), f"give these packages a place in LAYERS: {unlayered(packages, LAYERS)}"
    stale = {name for layer in LAYERS for name in layer} - set(packages)
    assert not stale, f"LAYERS names packages that do not exist: {stale}"


def test_packages_have_no_import_cycle():
    packages = package_graph(module_graph(SRC))
    found = cycles(packages)
    detail = "\n".join(_explain(packages, [(a, b) for a in sorted(c) for b in sorted(c) if b in packages[a]])
                       for c in found)
    assert not found, f"import cycles between packages:\n{detail}"


def test_packages_import_only_lower_layers():
    packages = package_graph(module_graph(SRC))
    bad = layer_violations(packages, LAYERS)
    assert not bad, f"imports against the layer order (tests/test_layers.py LAYERS):\n{_explain(packages, bad)}"


def test_no_new_module_cycles():
    graph = module_graph(SRC, statements_only=True)
    new = [c for c in cycles(graph) if not any(c <= known for known in KNOWN_MODULE_CYCLES)]
    detail = "\n".join(_explain(graph, [(a, b) for a in sorted(c) for b in sorted(c) if b in graph[a]]) for c in new)
    assert not new, f"import cycles between modules:\n{detail}"


def test_environment_vaes_meet_only_in_the_environments_package():
    """``gram_vae`` and ``eq_vae`` depend on ``generators.environments``, never on each other, and the shared
    package depends on neither."""
    graph = module_graph(SRC)
    gram, eq, shared = ("atomsmith.generators.gram_vae", "atomsmith.generators.eq_vae",
                        "atomsmith.generators.environments")

    def edges(source: str, target: str) -> list[str]:
        return sorted(f"{a} -> {b} ({', '.join(where)})" for a, targets in graph.items() if a.startswith(source)
                      for b, where in targets.items() if b.startswith(target))

    for source, target in ((gram, eq), (eq, gram), (shared, gram), (shared, eq)):
        assert not edges(source, target), "\n".join(edges(source, target))
    assert edges(gram, shared) and edges(eq, shared)
