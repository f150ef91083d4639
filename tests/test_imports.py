"""The package's import graph (#24 §1): no import circle, the table of models never reaches the code that measures
it, and only cnnlab/ui imports streamlit. Read from the source (every `import` and `from … import`, at module level
and inside functions alike), so a circle hidden inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "cnnlab"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _known(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                # `from pkg import name`: the submodule pkg.name where there is one, else pkg itself
                names = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for n in names:
                if n.startswith("cnnlab"):
                    dep = _known(n, modules)
                    if dep and dep != mod:
                        deps.add(dep)
        graph[mod] = deps
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for d in graph.get(todo.pop(), ()):
            if d not in seen:
                seen.add(d)
                todo.append(d)
    return seen


def _parents(mod: str) -> set[str]:
    parts = mod.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts))}


def test_the_package_has_no_import_circle():
    graph = import_graph()
    # a module importing its own package's __init__ (implicitly, by being inside it) is not a circle
    circles = sorted(m for m in graph if m in _reach(graph, m) - _parents(m) and m != "cnnlab")
    assert not circles, f"modules that import themselves through others: {circles}"


def test_the_table_of_models_never_reaches_the_measuring_code():
    graph = import_graph()
    measuring = {"cnnlab.measure", "cnnlab.probe", "cnnlab.arithmetic", "cnnlab.budget", "cnnlab.caches"}
    table = ["cnnlab.registry", "cnnlab.layers"] + sorted(m for m in graph if m.startswith("cnnlab.models"))
    for mod in table:
        assert not _reach(graph, mod) & measuring, (mod, _reach(graph, mod) & measuring)
    assert "cnnlab.models" in graph["cnnlab"]  # importing cnnlab registers every family


def test_only_the_ui_imports_streamlit():
    for path in PKG.rglob("*.py"):
        if "ui" in path.relative_to(PKG).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "streamlit" for a in node.names), path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "streamlit", path


def test_the_checker_sees_a_circle_inside_a_function(tmp_path, monkeypatch):
    """The checker itself can fail: a circle made by an import inside a function is found."""
    import sys

    pkg = tmp_path / "cnnlab"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    monkeypatch.setattr(sys.modules[__name__], "PKG", pkg)
    graph = import_graph()
    assert graph["cnnlab.a"] == {"cnnlab.b"} and graph["cnnlab.b"] == {"cnnlab.a"}
    assert "cnnlab.a" in _reach(graph, "cnnlab.a")
