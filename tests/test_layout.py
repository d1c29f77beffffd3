"""The package's layering, read from the import statements of its source: library code (I/O, models, metrics,
backends, ...) never imports a stage, a stage never imports another stage, and nothing imports Snakemake."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "semvideo_core"


def _imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of the modules that `source`, a module of `package`, imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}  # `from . import x` names a module x
    return names


def _modules() -> dict[Path, set[str]]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        package = ".".join(("semvideo_core", *path.relative_to(PACKAGE).parts[:-1]))
        modules[path] = _imported_modules(path.read_text(), package)
    return modules


def test_the_import_reader_resolves_relative_imports():
    source = "import numpy as np\nfrom ..io import models\nfrom .probe import classify\nfrom . import sad\n"
    assert _imported_modules(source, "semvideo_core.stages") == {
        "numpy",
        "semvideo_core.io",
        "semvideo_core.io.models",
        "semvideo_core.stages.probe",
        "semvideo_core.stages.probe.classify",
        "semvideo_core.stages",
        "semvideo_core.stages.sad",
    }


def test_library_code_never_imports_a_stage_and_stages_never_import_each_other():
    offenders = []
    for path, imports in _modules().items():
        stage = path.parent.name == "stages" and path.name != "__init__.py"
        own = f"semvideo_core.stages.{path.stem}"
        for name in imports:
            if name.startswith("semvideo_core.stages.") and not (stage and (name == own or name.startswith(own + "."))):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert not offenders, offenders


def test_the_package_never_imports_snakemake():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}: {name}"
        for path, imports in _modules().items()
        for name in imports
        if name.split(".")[0] == "snakemake"
    ]
    assert not offenders, offenders


def test_the_evaluation_and_the_probe_do_not_import_the_generators_library():
    """Their 21 jobs of the demo main job would each pay diffusers' import (~1 s of CPU) for nothing."""
    code = (
        "import sys, semvideo_core.stages.evaluate, semvideo_core.stages.probe;"
        "print(sorted(m for m in ('diffusers', 'sklearn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
