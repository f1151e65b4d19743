"""The import cycles of the project's own code: between packages (apps), and between modules.

    python bench/import_cycles.py

Reads every module of the apps (tests and migrations left out) with `ast`, counting every
import, at the top or inside a function, and prints the strongly connected components of
the package graph and of the module graph: each is a cycle.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ["core", "accounts", "workers", "albums", "generation", "training", "imagineer"]


def modules():
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "tests" in parts or "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(name, path, known):
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def cycles(graph):
    """Tarjan's strongly connected components of more than one node."""
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def main():
    found = modules()
    graph = {name: imports(name, path, found) for name, path in found.items()}
    packages = {}
    for name, targets in graph.items():
        top = name.split(".")[0]
        packages.setdefault(top, set()).update(t.split(".")[0] for t in targets
                                              if t.split(".")[0] != top)
    print("| graph | cycles |")
    print("| --- | --- |")
    for label, component_list in (("packages", cycles(packages)), ("modules", cycles(graph))):
        text = "; ".join(" <-> ".join(component) for component in component_list) or "none"
        print(f"| {label} ({len(component_list)}) | {text} |")
    print()
    for top in PACKAGES:
        print(f"{top} imports: {', '.join(sorted(packages.get(top, ()))) or '-'}")


if __name__ == "__main__":
    main()
