"""No import circle in ``scanner/``, function-level imports counted.

A circle works until someone moves an import; then a module is used half-initialised
and the error names neither end. grimp (installed with import-linter) sees every
import statement, including those inside functions. ``if TYPE_CHECKING:`` imports
are left out: they never run. Importing ``a.b.c`` runs ``a/__init__`` and
``a/b/__init__`` first, so an import is also counted as one of each package it
enters from outside (``config -> relay.kind`` runs ``relay/__init__``).
"""

from __future__ import annotations

import grimp


def _graph() -> dict[str, set[str]]:
    graph = grimp.build_graph("scanner", cache_dir=None, exclude_type_checking_imports=True)
    edges: dict[str, set[str]] = {m: set() for m in graph.modules}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            edges[module].add(imported)
            parts = imported.split(".")
            for i in range(2, len(parts)):
                package = ".".join(parts[:i])
                if not (module == package or module.startswith(package + ".")):
                    edges[module].add(package)
    return edges


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_one() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_scanner() -> None:
    assert _cycles(_graph()) == []
