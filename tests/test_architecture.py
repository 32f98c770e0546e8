"""The import graph of src/custseg: no cycles, and every dependency points the allowed way.

The graph is built from the source with an ``ast`` walk (nothing is imported). Every import
counts, including those inside functions (a deferred import still forms a cycle and still pulls
the module in when the function runs); imports under ``if TYPE_CHECKING:`` do not (they exist for
annotations only and never run). Failures name the file and line of each import involved.

The rules (the layering is described in the docstrings of ``custseg.results`` and
``custseg.outputs``):

* no import cycles;
* every module sits in one layer of the table in ``ARCHITECTURE.md``, and imports only modules of
  its own layer or a lower one (so the document and the code cannot drift apart);
* Typer and Rich are imported only by the CLI (``custseg.cli``, reached by ``custseg.__main__``);
* only ``custseg.outputs``, ``custseg.cli``, ``custseg.__main__`` and the package root may reach
  ``custseg.report``: no analysis module renders;
* ``custseg.report`` imports only result types (``custseg.results``), ``custseg.labels``,
  ``custseg.errors``, ``custseg._version`` and its own modules, and never scikit-learn (it fits
  nothing);
* the scoring API (``custseg.serve``, ``custseg.fastscore``) never reaches PySpark or
  ``custseg.spark``;
* ``custseg.results`` imports only ``custseg.results``, ``custseg.labels``, ``custseg._version``
  and ``custseg.errors`` (stages appear in its annotations only);
* no module inside the package imports the package root ``custseg`` (the version is in
  ``custseg._version``).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
ARCHITECTURE = SRC.parent / "ARCHITECTURE.md"
ROOT = "custseg"

CLI = {"custseg.cli", "custseg.__main__"}
MAY_RENDER = {"custseg.outputs", "custseg.cli", "custseg.__main__", ROOT}
REPORT_MAY_IMPORT = ("custseg.report", "custseg.results", "custseg.labels", "custseg.errors",
                     "custseg._version")
RESULTS_MAY_IMPORT = ("custseg.results", "custseg.labels", "custseg.errors", "custseg._version")
RESULTS_LIBRARIES = {"numpy", "pandas"}
FITS_MODELS = {"sklearn"}
CONSOLE = {"typer", "rich"}
API = ("custseg.serve", "custseg.fastscore")


# ------------------------------------------------------------------------------ the graph


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is, and whether it runs only inside a function."""

    target: str          # a custseg module, or a third-party / stdlib top-level name
    file: str
    line: int
    deferred: bool

    def where(self) -> str:
        return f"{self.file}:{self.line}" + (" (inside a function)" if self.deferred else "")


@dataclass
class Graph:
    modules: dict[str, Path]
    internal: dict[str, list[Import]] = field(default_factory=dict)   # module -> custseg imports
    external: dict[str, list[Import]] = field(default_factory=dict)   # module -> other imports

    def path_to(self, start: str, reached) -> list[tuple[str, Import]] | None:
        """The shortest chain of imports from ``start`` to a module for which ``reached(module)``
        is true (``[]`` when ``start`` itself is), as (importer, import) hops."""
        back: dict[str, tuple[str, Import] | None] = {start: None}
        queue = deque([start])
        while queue:
            mod = queue.popleft()
            if reached(mod):
                chain = []
                while back[mod] is not None:
                    prev, imp = back[mod]
                    chain.append((prev, imp))
                    mod = prev
                return chain[::-1]
            for imp in self.internal.get(mod, []):
                if imp.target not in back:
                    back[imp.target] = (mod, imp)
                    queue.append(imp.target)
        return None


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.Module):
    """(node, deferred) for every import that can run: ``if TYPE_CHECKING:`` bodies skipped."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, deferred = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, deferred
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            children = node.orelse
        else:
            children = list(ast.iter_child_nodes(node))
        inner = deferred or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        stack.extend((child, inner) for child in children)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def build_graph(src: Path = SRC, package: str = ROOT) -> Graph:
    files = sorted((src / package).rglob("*.py"))
    graph = Graph(modules={module_name(f, src): f for f in files})
    for name, path in graph.modules.items():
        rel = str(path.relative_to(src.parent)) if src.parent in path.parents else str(path)
        internal, external = graph.internal.setdefault(name, []), graph.external.setdefault(name, [])
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node, deferred in _imports(tree):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = _resolve(node, name, path.name == "__init__.py")
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in graph.modules else base
                           for a in node.names]
            for target in dict.fromkeys(targets):
                if target == package or target.startswith(package + "."):
                    while target not in graph.modules and "." in target:
                        target = target.rsplit(".", 1)[0]   # `import custseg.io.x.attr`
                    internal.append(Import(target, rel, node.lineno, deferred))
                else:
                    external.append(Import(target.split(".")[0], rel, node.lineno, deferred))
    return graph


def cycles(graph: Graph) -> list[list[tuple[str, Import]]]:
    """One cycle (as a chain of imports) through every strongly connected group of modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(v: str) -> None:   # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for imp in graph.internal.get(v, []):
            w = imp.target
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1 or any(i.target == v for i in graph.internal.get(v, [])):
                groups.append(group)

    for v in sorted(graph.modules):
        if v not in index:
            visit(v)
    found = []
    for group in groups:
        start = min(group)
        # the shortest way back to the start, through the group only
        sub = Graph(graph.modules, {m: [i for i in graph.internal.get(m, []) if i.target in group]
                                    for m in group})
        first = next(i for i in sub.internal[start])
        rest = sub.path_to(first.target, lambda m, s=start: m == s)
        found.append([(start, first), *rest])
    return found


def _chain_text(chain: list[tuple[str, Import]]) -> str:
    return "\n".join(f"    {imp.where()}: {mod} imports {imp.target}" for mod, imp in chain)


def reaches(graph: Graph, start: str, forbidden, what: str) -> str | None:
    """A message when ``start`` reaches a module for which ``forbidden(module)`` is true."""
    chain = graph.path_to(start, forbidden)
    if not chain:
        return None
    return f"{start} reaches {chain[-1][1].target} ({what}):\n{_chain_text(chain)}"


def reaches_library(graph: Graph, start: str, libraries: set[str], what: str) -> str | None:
    """A message when ``start`` (or a custseg module it reaches) imports one of ``libraries``."""
    chain = graph.path_to(start, lambda m: any(
        i.target in libraries for i in graph.external.get(m, [])))
    if chain is None:
        return None
    end = chain[-1][1].target if chain else start
    imp = next(i for i in graph.external[end] if i.target in libraries)
    return (f"{start} reaches {imp.target} ({what}):\n{_chain_text(chain)}"
            + ("\n" if chain else "") + f"    {imp.where()}: {end} imports {imp.target}")


def _in(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _fail_if(problems: list[str | None], header: str) -> None:
    """Fail with the problems' own text (file:line of every import involved), no repr noise."""
    problems = [p for p in problems if p]
    if problems:
        pytest.fail(header + "\n" + "\n".join(problems), pytrace=False)


# ------------------------------------------------------------------------------ the rules


@pytest.fixture(scope="module")
def graph() -> Graph:
    return build_graph()


def test_the_graph_sees_the_package(graph: Graph) -> None:
    # a guard for the rules below: an empty or misread graph would pass them all
    assert {"custseg.pipeline", "custseg.report.render", "custseg.results.segmentation",
            "custseg.cli", "custseg"} <= set(graph.modules)
    assert any(i.target == "custseg.pipeline" for i in graph.internal["custseg.cli"])
    assert any(i.target == "typer" for i in graph.external["custseg.cli"])


def test_no_import_cycles(graph: Graph) -> None:
    _fail_if(["  " + " -> ".join([c[0][0], *(imp.target for _, imp in c)]) + "\n" + _chain_text(c)
              for c in cycles(graph)], "import cycles in src/custseg:")


def test_typer_and_rich_only_in_the_cli(graph: Graph) -> None:
    _fail_if([reaches_library(graph, m, CONSOLE, "only the CLI draws on the console")
              for m in sorted(graph.modules) if m not in CLI],
             "Typer/Rich outside the CLI (progress goes through a callback the CLI supplies):")


def test_only_outputs_and_the_cli_reach_the_report(graph: Graph) -> None:
    problems = [reaches(graph, m, lambda t: _in(t, ["custseg.report"]),
                        "only custseg.outputs, the CLI and the package root may render")
                for m in sorted(graph.modules)
                if m not in MAY_RENDER and not _in(m, ["custseg.report"])]
    _fail_if(problems, "analysis modules reaching custseg.report:")


def test_report_reads_results_only(graph: Graph) -> None:
    problems = []
    for m in sorted(graph.modules):
        if not _in(m, ["custseg.report"]):
            continue
        problems += [f"{i.where()}: {m} imports {i.target} (the report may import only "
                     f"{', '.join(REPORT_MAY_IMPORT)})"
                     for i in graph.internal[m] if not _in(i.target, REPORT_MAY_IMPORT)]
        fits = reaches_library(graph, m, FITS_MODELS, "the report fits no model")
        problems.append(fits)
    _fail_if(problems, "custseg.report depends on more than results:")


@pytest.mark.parametrize("api", API)
def test_the_api_never_reaches_spark(graph: Graph, api: str) -> None:
    if api not in graph.modules:
        pytest.fail(f"{api} does not exist: the API rule has nothing to check")
    problems = [reaches(graph, api, lambda t: _in(t, ["custseg.spark"]),
                        "the scoring API never needs Spark"),
                reaches_library(graph, api, {"pyspark"}, "the scoring API never needs Spark")]
    _fail_if(problems, f"{api} reaches Spark:")


def test_results_are_at_the_bottom(graph: Graph) -> None:
    problems = []
    for m in sorted(graph.modules):
        if not _in(m, ["custseg.results"]):
            continue
        problems += [f"{i.where()}: {m} imports {i.target} (results may import only "
                     f"{', '.join(RESULTS_MAY_IMPORT)}; stage types go under TYPE_CHECKING)"
                     for i in graph.internal[m] if not _in(i.target, RESULTS_MAY_IMPORT)]
        problems += [f"{i.where()}: {m} imports {i.target} (results may use only the standard "
                     f"library, {', '.join(sorted(RESULTS_LIBRARIES))})"
                     for i in graph.external[m]
                     if i.target not in RESULTS_LIBRARIES | set(sys.stdlib_module_names)
                     and i.target != "__future__"]
    _fail_if(problems, "custseg.results is not at the bottom of the import graph:")


def _layers(doc: Path = ARCHITECTURE) -> dict[str, int]:
    """ARCHITECTURE.md's layer table: module (or package) -> layer number."""
    layers: dict[str, int] = {}
    for line in doc.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not re.match(r"\d+ ", cells[0]):
            continue
        for name in re.findall(r"`([\w.]+)`", cells[1]):
            full = ROOT if name == ROOT else f"{ROOT}.{name}"
            assert full not in layers, f"ARCHITECTURE.md lists {name} twice"
            layers[full] = int(cells[0].split()[0])
    return layers


def _layer_of(module: str, layers: dict[str, int]) -> int | None:
    """The layer of the longest listed prefix of ``module`` (a package covers its submodules)."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in layers and (name != ROOT or module == ROOT):
            return layers[name]
    return None


def test_every_module_has_a_layer_in_architecture_md(graph: Graph) -> None:
    layers = _layers()
    assert len(layers) > 30, "ARCHITECTURE.md's layer table was not found"
    missing = sorted(m for m in graph.modules if _layer_of(m, layers) is None)
    stale = sorted(n for n in layers if not any(_in(m, [n]) for m in graph.modules))
    _fail_if([f"{m} is in no layer of ARCHITECTURE.md" for m in missing]
             + [f"ARCHITECTURE.md lists {n}, which does not exist" for n in stale],
             "ARCHITECTURE.md and the code disagree:")


def test_imports_point_down_the_layers(graph: Graph) -> None:
    layers = _layers()
    problems = []
    for module, imports in sorted(graph.internal.items()):
        mine = _layer_of(module, layers)
        for i in imports:
            theirs = _layer_of(i.target, layers)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{i.where()}: {module} (layer {mine}) imports {i.target} "
                                f"(layer {theirs})")
    _fail_if(problems, "imports pointing up the layers of ARCHITECTURE.md:")


def test_nothing_imports_the_package_root(graph: Graph) -> None:
    problems = [f"{i.where()}: {m} imports the package root {ROOT} (import the module that "
                f"defines the name: custseg._version for __version__)"
                for m in sorted(graph.modules) for i in graph.internal[m] if i.target == ROOT]
    _fail_if(problems, "the package root imported from inside the package:")


# ------------------------------------------------------------------------------ the checker


def test_the_checker_sees_deferred_imports_and_skips_type_checking(tmp_path: Path) -> None:
    """The walk on a made-up package: a cycle through a deferred import is found (with its
    lines), an import under ``if TYPE_CHECKING:`` is not an edge, relative and ``from pkg import
    module`` imports resolve to the module."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import c\n"
        "def f():\n    from .. import c\n")
    (pkg / "c.py").write_text("import typer\nfrom pkg import a\n")
    g = build_graph(tmp_path, "pkg")
    assert [(i.target, i.line, i.deferred) for i in g.internal["pkg.sub.b"]] == [
        ("pkg.c", 5, True)]
    assert [i.target for i in g.internal["pkg.a"]] == ["pkg.sub.b"]
    [cycle] = cycles(g)
    assert [m for m, _ in cycle] == ["pkg.a", "pkg.sub.b", "pkg.c"]
    assert cycle[1][1].where().endswith("b.py:5 (inside a function)")
    msg = reaches_library(g, "pkg.a", CONSOLE, "console")
    assert msg is not None and "c.py:1: pkg.c imports typer" in msg
