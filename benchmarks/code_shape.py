"""The shape of src/posterlab: import cycles, long modules and functions, stage names, layers.

Prints the figures the code-shape limits of the core redesign are about, so that a
before/after table can be made, then one JSON line:

* import cycles among posterlab modules (imports inside functions count; imports under
  ``if TYPE_CHECKING:`` do not, they never run; importing a module of a package imports
  the package's ``__init__``, see :func:`imports_of`);
* modules over 400 lines, functions (``def``/``async def``, methods and nested ones
  included) over 60 lines, and the median function length (``end_lineno - lineno + 1``);
* the modules that spell a stage name (``"fetch"``, ``"extract"``, ``"faces"``,
  ``"analysis"`` as exact string literals) and how often;
* imports of Celery, SQLAlchemy, requests or click where the design's dependency rule
  forbids them (followed through posterlab modules, so a pure module that imports a
  module that imports SQLAlchemy is caught too);
* ``type: ignore`` comments and ``assert`` statements.

Alembic migrations are left out of the lengths and the stage names (see MIGRATIONS).

tests/test_code_shape.py imports the functions below and turns each limit into a test,
so the figures printed here and the limits tested there are measured by the same code.

    .venv/bin/python benchmarks/code_shape.py
    # the same figures for another commit, e.g. before a change:
    git archive main src/posterlab | tar -x -C /tmp/before
    .venv/bin/python benchmarks/code_shape.py --src /tmp/before/src/posterlab
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import io
import json
import re
import statistics
import tokenize
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "posterlab"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MAX_MEDIAN_FUNCTION_LINES = 12
STAGE_NAMES = ("fetch", "extract", "faces", "analysis")
# Alembic revisions are generated and, once applied somewhere, frozen history: they are
# exempt from the length and stage-name rules (still part of the import checks).
MIGRATIONS = "storage.migrations"

# The design's dependency rule, by the names the rule uses; kombu, billiard and amqp are
# Celery's own layers, alembic is SQLAlchemy's migrations, urllib3 is what requests runs on.
FAMILIES: dict[str, frozenset[str]] = {
    "Celery": frozenset({"celery", "kombu", "billiard", "amqp"}),
    "SQLAlchemy": frozenset({"sqlalchemy", "alembic"}),
    "requests": frozenset({"requests", "urllib3"}),
    "click": frozenset({"click"}),
}
PURE = ("imaging", "analysis", "manifest", "errors")
# Layer (a module or a package, relative to posterlab) -> the families it may not import.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{layer: ("Celery", "SQLAlchemy", "requests", "click") for layer in PURE},
    "fetch": ("Celery", "SQLAlchemy"),  # fetching is what requests is for
}
_TYPE_IGNORE = re.compile(r"#\s*type:\s*ignore\b")


@dataclass(frozen=True)
class Imports:
    """What one module imports: posterlab modules and other top-level packages, by line."""

    internal: dict[str, int] = field(default_factory=dict)
    external: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Function:
    """One ``def`` or ``async def``; ``name`` is dotted through classes and functions."""

    module: str
    name: str
    line: int
    length: int

    def __str__(self) -> str:
        return f"{self.module}.{self.name} (line {self.line}): {self.length} lines"


# ---------------------------------------------------------------- reading


def module_files(package: Path = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``package``.

    A package's name is its ``__init__.py``: importing ``posterlab.faces`` runs that file.
    """
    files = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def hand_written(files: Mapping[str, Path]) -> dict[str, Path]:
    """``files`` without the Alembic migrations."""
    return {module: path for module, path in files.items()
            if f".{MIGRATIONS}." not in f".{module}."}


@functools.cache
def parse(path: Path) -> ast.Module:
    """The syntax tree of ``path`` (cached: the test and the report parse each file once)."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def imports_of(module: str, path: Path, modules: Iterable[str]) -> Imports:
    """The imports of one module that can run, wherever they stand (functions included).

    ``from a import b`` where ``a.b`` is a module imports ``a.b``; otherwise it imports
    ``a``. Relative imports are resolved against ``module``'s package. Importing a module
    of a package also imports the package (its ``__init__``), as Python runs it first,
    except for the packages ``module`` itself is in: those have started running already,
    so only an explicit import of one counts.
    """
    known = frozenset(modules)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    own = set(_packages_of(module))
    found = Imports()
    for node in _runnable_imports(parse(path)):
        for target in _targets(node, package):
            top = target.partition(".")[0]
            if top not in known:
                found.external.setdefault(top, node.lineno)
                continue
            imported = _longest_known(target, known)  # ``from a.b import name``: a.b
            found.internal.setdefault(imported, node.lineno)
            for parent in _packages_of(imported):
                if parent not in own:
                    found.internal.setdefault(parent, node.lineno)
    found.internal.pop(module, None)
    return found


def _packages_of(module: str) -> list[str]:
    """The packages a dotted module name is in: ``a.b.c`` -> ``["a", "a.b"]``."""
    parts = module.split(".")
    return [".".join(parts[:end]) for end in range(1, len(parts))]


def _longest_known(name: str, known: frozenset[str]) -> str:
    while name not in known:
        name = name.rpartition(".")[0]
    return name


def _runnable_imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement outside ``if TYPE_CHECKING:`` bodies (their ``else`` runs)."""
    pending: list[ast.AST] = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
        else:
            pending.extend(ast.iter_child_nodes(node))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _targets(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """Dotted names an import statement may load: ``a.b`` for ``from a import b``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*anchor, *([base] if base else [])])
    return [f"{base}.{alias.name}" if alias.name != "*" else base for alias in node.names]


def import_graph(files: Mapping[str, Path]) -> dict[str, Imports]:
    """Module -> its :class:`Imports`, for every module of ``files``."""
    return {module: imports_of(module, path, files) for module, path in files.items()}


# ---------------------------------------------------------------- measuring


def import_cycles(graph: Mapping[str, Imports]) -> list[list[str]]:
    """One cycle per strongly connected group of modules, as a path back to its start.

    The path is a shortest one through the group's first module, e.g.
    ``["posterlab.tasks", "posterlab.workers.app", "posterlab.tasks"]``.
    """
    edges = {module: sorted(imports.internal) for module, imports in graph.items()}
    cycles = []
    for group in _strongly_connected(edges):
        if len(group) > 1:
            cycles.append(_shortest_cycle(min(group), edges, group))
    return sorted(cycles)


def _strongly_connected(edges: Mapping[str, Sequence[str]]) -> list[set[str]]:
    """Tarjan's algorithm, iterative (no recursion limit to meet on a deep chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    groups.append(_pop_group(stack, node))
            elif child not in index:
                index[child] = low[child] = len(index)
                stack.append(child)
                work.append((child, iter(edges.get(child, ()))))
            elif child in stack:
                low[node] = min(low[node], index[child])
    return groups


def _pop_group(stack: list[str], root: str) -> set[str]:
    group = set()
    while True:
        member = stack.pop()
        group.add(member)
        if member == root:
            return group


def _shortest_cycle(start: str, edges: Mapping[str, Sequence[str]], group: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in edges[node]:
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if child in group and child not in came_from:
                came_from[child] = node
                queue.append(child)
    raise ValueError(f"{start} is on no cycle")  # cannot happen for a group of two or more


def module_lengths(files: Mapping[str, Path]) -> dict[str, int]:
    """Module -> number of lines."""
    return {module: len(path.read_text(encoding="utf-8").splitlines())
            for module, path in files.items()}


def functions(files: Mapping[str, Path]) -> list[Function]:
    """Every function of every module, methods and nested functions included."""
    found = []
    for module, path in files.items():
        found += _functions_in(module, parse(path), "")
    return found


def _functions_in(module: str, node: ast.AST, prefix: str) -> list[Function]:
    found = []
    for child in ast.iter_child_nodes(node):
        name = prefix
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            name = f"{prefix}{child.name}."
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (child.end_lineno or child.lineno) - child.lineno + 1
            found.append(Function(module, name[:-1], child.lineno, length))
        found += _functions_in(module, child, name)
    return found


def stage_spellings(files: Mapping[str, Path]) -> dict[str, dict[str, int]]:
    """Stage name -> {module: times it is written as an exact string literal}."""
    counts: dict[str, dict[str, int]] = {name: {} for name in STAGE_NAMES}
    for module, path in files.items():
        tree = parse(path)
        # the text between an f-string's fields is a Constant too, but no literal of its own
        pieces = {id(part) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
                  for part in node.values}
        pieces |= _field_names(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in counts and id(node) not in pieces:
                per_module = counts[str(node.value)]
                per_module[module] = per_module.get(module, 0) + 1
    return counts


def _field_names(tree: ast.AST) -> set[int]:
    """Literals that name a field of a contract, not a stage: dict keys and subscripts (the
    ``analysis`` key of ``status --json``) and table names (the ``faces`` table)."""
    names: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            names |= {id(key) for key in node.keys if key is not None}
        elif isinstance(node, ast.Subscript):
            names.add(id(node.slice))
        elif isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__tablename__" for t in node.targets):
            names.add(id(node.value))
    return names


def forbidden_imports(graph: Mapping[str, Imports], package: str = "posterlab") -> list[str]:
    """Each import the dependency rule forbids, with the chain of modules that leads to it.

    Followed through posterlab modules: ``posterlab.manifest -> posterlab.config (line 3)
    -> sqlalchemy (line 9)`` breaks the rule as surely as a direct import would.
    """
    problems = []
    for module in sorted(graph):
        families = _forbidden_for(module, package)
        banned = {top: family for family in families for top in FAMILIES[family]}
        for chain, top in _reachable_externals(module, graph):
            if top in banned:
                problems.append(f"{' -> '.join(chain)} -> {top}: {module} may not import "
                                f"{banned[top]}")
    return problems


def _forbidden_for(module: str, package: str) -> tuple[str, ...]:
    for layer, families in FORBIDDEN.items():
        name = f"{package}.{layer}"
        if module == name or module.startswith(name + "."):
            return families
    return ()


def _reachable_externals(start: str, graph: Mapping[str, Imports]) -> list[tuple[list[str], str]]:
    """(chain of posterlab modules, top-level package) for every package ``start`` reaches."""
    chains = {start: [start]}
    queue = deque([start])
    found = []
    while queue:
        module = queue.popleft()
        imports = graph[module]
        for top, line in sorted(imports.external.items()):
            found.append(([*chains[module][:-1], f"{module} (line {line})"], top))
        for child, line in sorted(imports.internal.items()):
            if child not in chains and child in graph:
                chains[child] = [*chains[module][:-1], f"{module} (line {line})", child]
                queue.append(child)
    return found


def type_ignores(files: Mapping[str, Path]) -> int:
    """``# type: ignore`` comments (comments only: not the words inside strings)."""
    count = 0
    for path in files.values():
        tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
        count += sum(1 for token in tokens
                     if token.type == tokenize.COMMENT and _TYPE_IGNORE.search(token.string))
    return count


def asserts(files: Mapping[str, Path]) -> int:
    """``assert`` statements."""
    return sum(isinstance(node, ast.Assert)
               for path in files.values() for node in ast.walk(parse(path)))


# ---------------------------------------------------------------- report


@dataclass(frozen=True)
class Figures:
    """Every figure of the report; :func:`dataclasses.asdict` of it is the JSON line."""

    modules: int
    import_cycles: list[str]
    forbidden_imports: list[str]
    modules_over_400: dict[str, int]
    functions: int
    functions_over_60: dict[str, int]
    median_function_lines: float
    stage_names: dict[str, dict[str, int]]
    type_ignores: int
    asserts: int

    @property
    def stage_name_modules(self) -> list[str]:
        """The modules spelling any stage name."""
        return sorted({module for per in self.stage_names.values() for module in per})


def figures(package: Path = PACKAGE) -> Figures:
    """Measure ``package`` (a posterlab source folder)."""
    files = module_files(package)
    graph = import_graph(files)
    shaped = hand_written(files)
    found = functions(shaped)
    return Figures(
        modules=len(files),
        import_cycles=[" -> ".join(cycle) for cycle in import_cycles(graph)],
        forbidden_imports=forbidden_imports(graph, package.name),
        modules_over_400={module: lines for module, lines in module_lengths(shaped).items()
                          if lines > MAX_MODULE_LINES},
        functions=len(found),
        functions_over_60={f"{f.module}.{f.name}": f.length for f in found
                           if f.length > MAX_FUNCTION_LINES},
        median_function_lines=statistics.median(f.length for f in found) if found else 0,
        stage_names=stage_spellings(shaped),
        type_ignores=type_ignores(files),
        asserts=asserts(files),
    )


def _print_list(title: str, items: Sequence[str]) -> None:
    print(f"{title}: {len(items)}")
    for item in items:
        print(f"  {item}")


def _print_lengths(title: str, lengths: Mapping[str, int]) -> None:
    print(f"{title}: {len(lengths)}")
    for name, lines in sorted(lengths.items(), key=lambda item: (-item[1], item[0])):
        print(f"  {lines:5d}  {name}")


def _print_report(data: Figures) -> None:
    _print_list("import cycles", data.import_cycles)
    _print_list("imports the dependency rule forbids", data.forbidden_imports)
    _print_lengths(f"modules over {MAX_MODULE_LINES} lines", data.modules_over_400)
    _print_lengths(f"functions over {MAX_FUNCTION_LINES} lines", data.functions_over_60)
    print(f"median function length: {data.median_function_lines} lines "
          f"over {data.functions} functions in {data.modules} modules")
    total = sum(n for per in data.stage_names.values() for n in per.values())
    print(f"stage names as string literals: {total} in {len(data.stage_name_modules)} modules")
    for name, per_module in data.stage_names.items():
        print(f"  {name!r}: {sum(per_module.values())} in {len(per_module)} modules")
        for module, times in sorted(per_module.items()):
            print(f"      {times:3d}  {module}")
    print(f"type: ignore comments: {data.type_ignores}")
    print(f"assert statements: {data.asserts}")


def main(argv: Sequence[str] | None = None) -> int:
    """Print the report for ``--src`` (default: this checkout's src/posterlab)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="example: benchmarks/code_shape.py")
    parser.add_argument("--src", type=Path, default=PACKAGE,
                        help="the posterlab package folder (default: this checkout's)")
    args = parser.parse_args(argv)
    data = figures(args.src.resolve())
    _print_report(data)
    print(json.dumps(dataclasses.asdict(data), sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
