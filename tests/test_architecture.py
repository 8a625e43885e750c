"""The layering rule: the verifier and the trainer never import each other; only the driver sees both.

* ``equivrepair/repair/train.py`` never imports ``equivrepair.reach`` (directly or transitively);
* nothing under ``equivrepair/reach`` imports torch or ``equivrepair.repair`` (directly or transitively);
* inside ``equivrepair/repair`` only ``driver.py`` imports ``equivrepair.reach`` and only ``train.py``
  imports torch (targets, boxes and report are numpy only).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "equivrepair"


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (anywhere in the file, also inside functions)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    mod = _module_name(path)
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.split(".")
                base = base if is_pkg else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                prefix = ".".join(base)
                name = f"{prefix}.{node.module}" if node.module else prefix
            else:
                name = node.module or ""
            out.add(name)
            out.update(f"{name}.{alias.name}" for alias in node.names)
    return out


def _hits(names: set[str], banned: str) -> list[str]:
    return sorted(n for n in names if n == banned or n.startswith(banned + "."))


def test_import_resolver_sees_relative_imports():
    names = imports_of(PKG / "repair" / "driver.py")
    assert _hits(names, "equivrepair.reach"), "the driver imports the verifier; the resolver must see it"
    assert _hits(names, "equivrepair.repair.train")


def test_train_never_imports_reach():
    assert _hits(imports_of(PKG / "repair" / "train.py"), "equivrepair.reach") == []


@pytest.mark.parametrize("path", sorted((PKG / "reach").rglob("*.py")), ids=lambda p: str(p.relative_to(PKG)))
def test_reach_imports_neither_torch_nor_repair(path):
    names = imports_of(path)
    assert _hits(names, "torch") == [], f"{path} imports torch"
    assert _hits(names, "equivrepair.repair") == [], f"{path} imports equivrepair.repair"
    for torch_module in (
        "equivrepair.compress.qat",
        "equivrepair.compress.torch_train",
        "equivrepair.compress.curvature",
    ):
        assert _hits(names, torch_module) == [], f"{path} imports {torch_module} (torch)"


@pytest.mark.parametrize("path", sorted((PKG / "repair").glob("*.py")), ids=lambda p: p.name)
def test_only_driver_sees_both(path):
    names = imports_of(path)
    if path.name != "driver.py":
        assert _hits(names, "equivrepair.reach") == [], f"{path.name} imports the verifier; only driver.py may"
    if path.name != "train.py":
        assert _hits(names, "torch") == [], f"{path.name} imports torch; only train.py may"


def _run(code: str) -> None:
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_reach_does_not_load_torch_or_repair_at_runtime():
    mods = sorted(
        _module_name(p) for p in (PKG / "reach").rglob("*.py") if "external" not in p.relative_to(PKG / "reach").parts
    )
    _run(
        "import importlib, sys\n"
        f"for m in {mods!r}:\n"
        "    importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.') or m.startswith('equivrepair.repair')]\n"
        "assert not bad, bad[:5]\n"
    )


def test_train_does_not_load_reach_at_runtime():
    pytest.importorskip("torch")
    _run(
        "import sys\n"
        "import equivrepair.repair.train, equivrepair.repair.targets, equivrepair.repair.boxes\n"
        "bad = [m for m in sys.modules if m.startswith('equivrepair.reach')]\n"
        "assert not bad, bad\n"
    )
