"""The explanatory figures in docs/img/ are the ones docs/figures.py draws, and every one is shown."""
from __future__ import annotations

import importlib.util

import numpy as np

from conftest import ROOT, run_script

DOCS = ROOT / "docs"


def figures_module():
    spec = importlib.util.spec_from_file_location("docs_figures", DOCS / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_figures_are_current():
    proc = run_script("docs/figures.py", "--check", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_check_fails_on_a_changed_or_missing_figure(tmp_path):
    figures = figures_module()
    assert figures.main(["--out-dir", str(tmp_path)]) == 0
    assert figures.main(["--check", "--out-dir", str(tmp_path)]) == 0
    name = next(iter(figures.FIGURES))
    other = next(n for n in figures.FIGURES if n != name)
    (tmp_path / name).write_bytes((tmp_path / other).read_bytes())
    assert figures.main(["--check", "--out-dir", str(tmp_path)]) == 1
    (tmp_path / name).unlink()
    assert figures.main(["--check", "--out-dir", str(tmp_path)]) == 1


def test_check_tolerates_one_level_of_anti_aliasing_but_not_a_changed_pixel():
    figures = figures_module()
    old = np.full((4, 4, 4), 0.5, dtype=np.float32)
    shifted = old.copy()
    shifted[1, 2, :3] += 1 / 255
    assert figures.same_picture(old, shifted)
    changed = old.copy()
    changed[1, 2, 0] = 0.0
    assert not figures.same_picture(old, changed)
    assert not figures.same_picture(old, old[:3])


def test_every_figure_is_embedded_in_a_doc():
    text = "".join(p.read_text(encoding="utf-8") for p in DOCS.glob("*.md"))
    missing = [name for name in figures_module().FIGURES if f"(img/{name})" not in text]
    assert not missing, f"figures not shown in any doc: {missing}"
