"""`equivrepair report` on what `equivrepair repair --report` and `verify --json` really write.

A real repair run (two α, two rounds) and a real verification of the same pair go into one
folder, together with everything else those commands leave there (repaired networks, metadata
JSON, round logs); the report must find each kind, put the repair run and the verification in
the same network-pair section, and draw the per-round curves from the logged numbers.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from equivrepair.cli import main  # noqa: E402
from equivrepair.compress import quantize  # noqa: E402
from equivrepair.compress.torch_train import train_classifier  # noqa: E402
from equivrepair.nets.load import save_network  # noqa: E402
from equivrepair.report import build_report, load_results, repair_figure, write_report  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A folder holding a repair report (α = 2 and 10), its logs and networks, and a verify --json."""
    out = tmp_path_factory.mktemp("mixed")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(0)
        X = rng.uniform(0, 1, size=(900, 6))
        y = (X[:, 0] + X[:, 1] > 1).astype(np.int64) + (X[:, 2] > 0.5).astype(np.int64)
        orig = train_classifier([6, 16, 8, 3], X, y, epochs=10, lr=3e-3, batch_size=64)
        comp = quantize(orig, 3, "symmetric", "per-tensor")
        save_network(orig, out / "orig.onnx")
        save_network(comp, out / "comp.onnx")
        (out / "comp.onnx.meta.json").write_text(json.dumps({"metadata": comp.info()["metadata"]}))
        np.savez(out / "data.npz", X=X, y=y, X_test=X[:200], y_test=y[:200])
        argv = ["repair", str(out / "orig.onnx"), str(out / "comp.onnx"), "--data", str(out / "data.npz")]
        argv += ["--boxes", "linf:2", "--n-boxes", "6", "--alpha", "2", "10", "--rounds", "2"]
        argv += ["--labelled", "200", "--val", "200", "--quiet", "-o", str(out / "rep.onnx")]
        assert main(argv + ["--report", str(out / "rep.json")]) == 0
    finally:
        torch.set_num_threads(before)
    (out / "box.json").write_text(json.dumps({"lower": [0.0] * 6, "upper": [1.0] * 6}))
    argv = ["verify", str(out / "orig.onnx"), str(out / "comp.onnx"), "--input-set", str(out / "box.json")]
    assert main(argv + ["--timeout", "30", "--json", str(out / "verify.json")]) in (0, 2)
    return out


def test_detects_each_kind_and_pairs_them(mixed):
    entries, problems = load_results([mixed])
    assert problems == []  # metadata JSON and round logs are recognised, not reported as unreadable
    assert sorted(e.kind for e in entries) == ["repair", "result"]
    rep = next(e for e in entries if e.kind == "repair")
    ver = next(e for e in entries if e.kind == "result")
    assert rep.pair == ver.pair == ("orig.onnx", "comp.onnx")
    report = json.loads((mixed / "rep.json").read_text())
    assert set(rep.runs) == {"α=2", "α=10"}
    for a in ("2", "10"):
        assert rep.runs[f"α={a}"] == report["runs"][a]["rounds"]
    rows = {r["label"]: r for r in rep.repair["runs"]}
    for a in ("2", "10"):
        rounds = report["runs"][a]["rounds"]
        assert rows[f"α={a}"]["delta_upper_first"] == rounds[0]["delta_upper_max"]
        assert rows[f"α={a}"]["delta_upper_last"] == rounds[-1]["delta_upper_max"]
        assert rows[f"α={a}"]["test_accuracy"] == report["runs"][a]["test_accuracy"]
        assert rows[f"α={a}"]["reason"] == report["runs"][a]["reason"]
    assert rep.repair["test_accuracy"] == report["test_accuracy"]
    # the repair report alone and the verify output alone are detected as well
    (only_rep,), _ = load_results([mixed / "rep.json"])
    (only_ver,), _ = load_results([mixed / "verify.json"])
    assert only_rep.kind == "repair" and only_ver.kind == "result"


def test_round_logs_without_the_report(mixed):
    """A repair cut off before writing its report: the round logs are read, named through the pair's hash."""
    entries, problems = load_results([mixed / "rep.onnx.repairlog", mixed / "verify.json"])
    assert problems == []
    logs = [e for e in entries if e.kind == "repair"]
    report = json.loads((mixed / "rep.json").read_text())
    assert sorted(next(iter(e.runs)) for e in logs) == ["α=10", "α=2"]
    for e in logs:
        (label, rounds), *_ = e.runs.items()
        logged = [r["delta_upper_max"] for r in report["runs"][label[2:]]["rounds"]]
        assert [r["delta_upper_max"] for r in rounds] == logged
        assert e.pair == ("orig.onnx", "comp.onnx")  # named by the verify output's SHA-256


def test_curves_per_round_per_alpha(mixed):
    entries, _ = load_results([mixed / "rep.json"])
    report = json.loads((mixed / "rep.json").read_text())
    fig = repair_figure(entries[0])
    disc, acc = fig.axes
    lines = {ln.get_label(): ln for ln in disc.get_lines()}
    for a in ("2", "10"):
        rounds = report["runs"][a]["rounds"]
        up, wit = lines[f"α={a}: upper bound"], lines[f"α={a}: witness"]
        assert list(up.get_xdata()) == [r["round"] for r in rounds]
        assert np.allclose(up.get_ydata(), [r["delta_upper_max"] for r in rounds])
        assert np.allclose(wit.get_ydata(), [r["delta_lower_max"] for r in rounds])
        assert np.all(np.asarray(wit.get_ydata()) <= np.asarray(up.get_ydata()) + 1e-12)
        acc_line = next(ln for ln in acc.get_lines() if ln.get_label() == f"α={a}")
        assert np.allclose(acc_line.get_ydata(), [r["accuracy"] for r in rounds])
    assert disc.get_yscale() == "log"


def test_cli_report_html_and_markdown(mixed, tmp_path):
    assert main(["report", str(mixed), "--html", str(tmp_path / "r.html")]) == 0
    text = (tmp_path / "r.html").read_text()
    assert text.count("<h2>") == 1  # one network pair
    assert text.count("data:image/png;base64,") == 2  # the verify interval plot and the repair curves
    report = json.loads((mixed / "rep.json").read_text())
    for a in ("2", "10"):
        assert f"rounds of α={a}" in text
        last = report["runs"][a]["rounds"][-1]["delta_upper_max"]
        assert f"{last:.4g}" in text
    assert "repaired network" in text and "rep_a10.onnx" in text
    assert main(["report", str(mixed / "rep.json"), "--markdown", str(tmp_path / "r.md")]) == 0
    md = (tmp_path / "r.md").read_text()
    pngs = sorted((tmp_path / "r_files").glob("*.png"))
    assert len(pngs) == 1 and pngs[0].read_bytes().startswith(PNG_MAGIC) and "repair" in pngs[0].name
    assert f"r_files/{pngs[0].name}" in md and "| α=2 |" in md and "rounds of α=10:" in md


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_mixed_report_renders_in_headless_chromium(mixed, tmp_path):
    entries, problems = load_results([mixed])
    page = write_report(build_report(entries, problems), tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,2000", page.as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[:2] == (2000, 1200)
    assert img[..., :3].std() > 0.05  # not a blank page
