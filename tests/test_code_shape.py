"""The code-shape limits of src/posterlab, one test each, measured by benchmarks/code_shape.py.

The measuring code lives in the benchmark script, which prints the same figures for the
before/after table; it is loaded from its file here, as benchmarks/ is not a package.
The first tests check the measuring code itself on tiny packages written to tmp_path.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "code_shape.py"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("code_shape", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while classes are made
    spec.loader.exec_module(module)
    return module


shape = _load_script()


@pytest.fixture(scope="module")
def files() -> dict[str, Path]:
    return shape.module_files()


@pytest.fixture(scope="module")
def graph(files: dict[str, Path]) -> dict[str, object]:
    return shape.import_graph(files)


def write_package(root: Path, sources: dict[str, str]) -> Path:
    """Write ``{"pkg/a.py": source, ...}`` under ``root``; return the package folder."""
    for name, source in sources.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root / next(iter(sources)).split("/")[0]


# ---------------------------------------------------------------- the measuring code


def test_imports_inside_functions_make_cycles_and_type_checking_imports_do_not(
        tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "def f():\n    from pkg import b\n",
        "pkg/b.py": "import pkg.a\n",
        "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.d\n",
        "pkg/d.py": "from . import c\n",
    })
    cycles = shape.import_cycles(shape.import_graph(shape.module_files(package)))
    assert cycles == [["pkg.a", "pkg.b", "pkg.a"]]


def test_from_a_package_importing_a_name_imports_its_init_and_a_submodule_imports_it(
        tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "from pkg.sub.leaf import VALUE\n",
        "pkg/sub/__init__.py": "",
        "pkg/sub/leaf.py": "from .. import sub\nfrom ..sub import leaf2\nVALUE = 1\n",
        "pkg/sub/leaf2.py": "from pkg import VALUE\n",
    })
    graph = shape.import_graph(shape.module_files(package))
    assert set(graph["pkg.sub.leaf"].internal) == {"pkg.sub", "pkg.sub.leaf2"}
    assert set(graph["pkg.sub.leaf2"].internal) == {"pkg"}
    assert shape.import_cycles(graph) == [["pkg", "pkg.sub.leaf", "pkg.sub.leaf2", "pkg"]]


def test_importing_a_module_of_another_package_imports_that_packages_init(
        tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a/__init__.py": "from pkg.b import B\n",
        "pkg/a/impl.py": "from pkg.a import helpers\n",
        "pkg/a/helpers.py": "",
        "pkg/b.py": "def f():\n    from pkg.a.impl import thing\nB = 1\n",
    })
    graph = shape.import_graph(shape.module_files(package))
    assert set(graph["pkg.b"].internal) == {"pkg.a.impl", "pkg.a"}
    assert set(graph["pkg.a.impl"].internal) == {"pkg.a.helpers"}  # its own package: no edge
    assert shape.import_cycles(graph) == [["pkg.a", "pkg.b", "pkg.a"]]


def test_forbidden_imports_are_followed_through_the_package(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "posterlab/__init__.py": "",
        "posterlab/manifest.py": "def f():\n    from posterlab import config\n",
        "posterlab/config.py": "import sqlalchemy.orm\n",
        "posterlab/fetch.py": "import requests\n",
    })
    problems = shape.forbidden_imports(shape.import_graph(shape.module_files(package)))
    assert problems == ["posterlab.manifest (line 2) -> posterlab.config (line 1) -> sqlalchemy: "
                        "posterlab.manifest may not import SQLAlchemy"]


def test_functions_are_measured_with_methods_and_nested_functions(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": "class A:\n    async def m(self):\n        def inner():\n"
                           "            pass\n        return inner\n",
    })
    found = {(f.name, f.length) for f in shape.functions(shape.module_files(package))}
    assert found == {("A.m", 4), ("A.m.inner", 2)}


def test_stage_names_count_exact_literals_only(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": 's = "fetch"\nt = "fetch-timeout"\nu = f"{s}faces"\nv = ["faces"]\n',
    })
    assert shape.stage_spellings(shape.module_files(package)) == {
        "fetch": {"pkg": 1}, "extract": {}, "faces": {"pkg": 1}, "analysis": {}}


def test_field_and_table_names_like_a_stage_are_not_stage_names(tmp_path: Path) -> None:
    package = write_package(tmp_path, {
        "pkg/__init__.py": ('d = {"analysis": 1}\nx = d["analysis"]\n'
                            'class T:\n    __tablename__ = "faces"\n'
                            'y = "analysis"\n'),
    })
    assert shape.stage_spellings(shape.module_files(package)) == {
        "fetch": {}, "extract": {}, "faces": {}, "analysis": {"pkg": 1}}


# ---------------------------------------------------------------- the limits


def test_no_posterlab_modules_import_each_other_in_a_cycle(graph: dict[str, object]) -> None:
    cycles = shape.import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_no_module_is_longer_than_400_lines(files: dict[str, Path]) -> None:
    lengths = shape.module_lengths(shape.hand_written(files))
    over = {m: n for m, n in lengths.items() if n > shape.MAX_MODULE_LINES}
    assert not over, "modules over 400 lines:\n" + "\n".join(
        f"{n:5d}  {m}" for m, n in sorted(over.items()))


def test_no_function_is_longer_than_60_lines(files: dict[str, Path]) -> None:
    over = [f for f in shape.functions(shape.hand_written(files))
            if f.length > shape.MAX_FUNCTION_LINES]
    assert not over, "functions over 60 lines:\n" + "\n".join(map(str, over))


def test_the_median_function_is_at_most_12_lines(files: dict[str, Path]) -> None:
    found = shape.functions(shape.hand_written(files))
    median = statistics.median(f.length for f in found)
    longest = sorted(found, key=lambda f: -f.length)[:10]
    assert median <= shape.MAX_MEDIAN_FUNCTION_LINES, (
        f"median function length {median} over {len(found)} functions; the longest:\n"
        + "\n".join(map(str, longest)))


def test_stage_names_are_spelled_in_one_module_at_most(files: dict[str, Path]) -> None:
    spellings = shape.stage_spellings(shape.hand_written(files))
    modules = sorted({module for per in spellings.values() for module in per})
    assert len(modules) <= 1, "stage names spelled as string literals in:\n" + "\n".join(
        f"  {module}: " + ", ".join(f"{name!r} x{per[module]}"
                                    for name, per in spellings.items() if module in per)
        for module in modules)


def test_pure_layers_and_fetch_import_nothing_the_dependency_rule_forbids(
        graph: dict[str, object]) -> None:
    problems = shape.forbidden_imports(graph)
    assert not problems, "imports the dependency rule forbids:\n" + "\n".join(problems)
