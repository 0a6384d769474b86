"""The package's shape: no import cycles, stages that import no other stage, nothing below a layer
importing it, tools that reach library code only. Read from the source, so lazy imports count."""

import ast
from pathlib import Path

from tests.helpers import REPO

PACKAGE = REPO / "edgeseg"
STAGE_LIBRARY_MODULES = {"edgeseg.stages", "edgeseg.stages.base"}
# Modules above the stages: they run stages or present what stages made.
STAGE_CALLERS = {"edgeseg", "edgeseg.pipeline", "edgeseg.benchmark", "edgeseg.cli", "edgeseg.__main__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The edgeseg modules `path` imports anywhere in its body, `from package import module` included."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "edgeseg"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "edgeseg":
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names if f"{node.module}.{alias.name}" in known}
    return found & known


def import_graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imported_modules(path, set(found)) - {name} for name, path in found.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, components = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_in_the_package():
    graph = import_graph()
    assert len(graph) > 40, "the walk found too few modules to mean anything"
    assert cycles(graph) == []


def test_a_stage_imports_no_other_stage_and_only_callers_import_stages():
    graph = import_graph()
    stage_modules = {name for name in graph if name.startswith("edgeseg.stages.")} - STAGE_LIBRARY_MODULES
    assert {"edgeseg.stages.train", "edgeseg.stages.quantize"} <= stage_modules
    for stage in stage_modules:
        assert graph[stage] & stage_modules == set(), f"{stage} imports another stage"
    for name, imported in graph.items():
        if name not in STAGE_CALLERS and not name.startswith("edgeseg.stages"):
            assert imported & (stage_modules | {"edgeseg.stages"}) == set(), f"{name} imports a stage"


def test_nothing_imports_the_facade_or_the_demos_from_below():
    graph = import_graph()
    for name, imported in graph.items():
        if name not in ("edgeseg.cli", "edgeseg.__main__"):
            assert "edgeseg" not in imported, f"{name} imports the package facade"
        if not name.startswith(("edgeseg.demo", "edgeseg.cli")):
            assert {module for module in imported if module.startswith("edgeseg.demo")} == set(), f"{name} imports a demo"


def test_tools_reach_library_code_only():
    known = set(modules())
    for tool in sorted((REPO / "tools").glob("*.py")):
        imported = imported_modules(tool, known)
        assert {module for module in imported if module.startswith("edgeseg.stages")} == set(), tool.name
        assert not any(line.startswith(("from tests", "import tests")) for line in tool.read_text().splitlines()), tool.name
