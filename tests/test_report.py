"""Reports: star projections are the reachable set, every kind of input is read, HTML/Markdown render."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

from equivrepair.campaign import Job, ResultStore, job_key, run_job
from equivrepair.certify import make_certificate, write_certificate
from equivrepair.nets.ir import FNN, random_fnn
from equivrepair.nets.load import save_network
from equivrepair.reach.api import evaluate
from equivrepair.report import build_report, load_results, project_stars, write_report
from equivrepair.spec.sets import Box

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _pair(seed: int = 0):
    orig = random_fnn([2, 6, 6, 3], seed=seed)
    rng = np.random.default_rng(seed + 1)
    comp = FNN.from_arrays(
        [layer.W + 0.03 * rng.normal(size=layer.W.shape) for layer in orig.layers], [layer.b for layer in orig.layers]
    )
    return orig, comp


def test_projection_polygons_are_the_reachable_set():
    orig, comp = _pair()
    box = Box(-np.ones(2), np.ones(2))
    d = evaluate(orig, comp, box, method="star-enum", time_limit=60)
    assert d.stars
    pr = project_stars(d.stars, box, (0, 1), per_output=d.per_output)
    assert pr["outputs"] == [0, 1] and pr["n_projected"] == len(d.stars) == pr["n_stars"]
    # every vertex is a reachable value, so it lies inside the exact per-output intervals
    V = np.vstack([np.asarray(p) for p in pr["polygons"]])
    tol = 1e-7
    assert np.all(V[:, 0] >= d.per_output[0, 0] - tol) and np.all(V[:, 0] <= d.per_output[0, 1] + tol)
    assert np.all(V[:, 1] >= d.per_output[1, 0] - tol) and np.all(V[:, 1] <= d.per_output[1, 1] + tol)
    # the union of polygons covers sampled discrepancies (16 directions cut only thin corners)
    from matplotlib.path import Path as MPath

    X = box.sample(1500, seed=5)
    D = (orig.forward(X) - comp.forward(X))[:, :2]
    scale = np.abs(D).max()
    inside = np.zeros(len(D), dtype=bool)
    for poly in pr["polygons"]:
        P = np.asarray(poly)
        if len(P) >= 3:
            inside |= MPath(P).contains_points(D, radius=1e-3 * scale) | MPath(P[::-1]).contains_points(
                D, radius=1e-3 * scale
            )
    assert inside.mean() > 0.97, inside.mean()
    # the extreme points of the set are reached: the polygons touch the exact interval ends
    assert V[:, 0].max() == pytest.approx(d.per_output[0, 1], abs=1e-6 * (1 + scale))
    assert V[:, 1].min() == pytest.approx(d.per_output[1, 0], abs=1e-6 * (1 + scale))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    orig, comp = _pair()
    save_network(orig, out / "orig.onnx")
    save_network(comp, out / "comp.onnx")
    (out / "box.json").write_text(json.dumps({"lower": [-1, -1], "upper": [1, 1]}))
    # a campaign store, filled in-process (run_job is what the Dask workers run)
    with ResultStore(out / "campaign.sqlite") as st:
        for method, eps in (("star-enum", None), ("exact", 0.05), ("interval", None)):
            job = Job(str(out / "orig.onnx"), str(out / "comp.onnx"), str(out / "box.json"), eps, 30.0, method)
            k = job_key(job)
            rec = run_job(dict(job.spec(), key=k))
            assert rec["status"] != "error", rec.get("traceback")
            st.add(job, k, rec)
        bad = Job(str(out / "missing.onnx"), str(out / "comp.onnx"), str(out / "box.json"), 0.1)
        st.add(bad, job_key(bad), run_job(dict(bad.spec(), key=job_key(bad))))
    # verify --json style output and a certificate of a second pair
    o2, c2 = _pair(7)
    box = Box(-np.ones(2), np.ones(2), label="unit box")
    d = evaluate(o2, c2, box, time_limit=30)
    payload = d.to_json()
    payload.update(
        orig={"path": "o2.onnx", "sha256": o2.content_hash}, comp={"path": "c2.onnx"}, input_set=box.to_json()
    )
    (out / "verify.json").write_text(json.dumps(payload))
    write_certificate(out / "cert.json.gz", make_certificate(o2, c2, box, d, orig_path="o2.onnx", comp_path="c2.onnx"))
    # a repair report, partly malformed (a string value, a non-dict round, a missing key)
    rounds = [
        {"round": i, "delta_max": 0.3 * 0.6**i, "accuracy": 0.9 + 0.01 * i, "loss": 1 / (i + 1)} for i in range(5)
    ]
    rounds += [{"round": 5, "delta_max": "n/a"}, "garbage", {"accuracy": 0.97}]
    (out / "repair_report.json").write_text(json.dumps({"orig": "o2.onnx", "comp": "c2.onnx", "rounds": rounds}))
    (out / "junk.json").write_text(json.dumps({"hello": 1}))
    (out / "broken.json").write_text("{not json")
    return out


def test_load_results_tolerant(results_dir):
    entries, problems = load_results([results_dir, results_dir / "nope.sqlite"])
    kinds = sorted(e.kind for e in entries)
    assert kinds.count("result") == 5 and kinds.count("certificate") == 1 and kinds.count("repair") == 1
    assert any("junk.json" in p for p in problems) and any("broken.json" in p for p in problems)
    assert any("nope.sqlite" in p for p in problems)
    star = next(e for e in entries if e.method == "star-enum")
    assert star.projection and star.projection["polygons"] and star.witness_delta is not None
    err = next(e for e in entries if e.error)
    assert err.status == "error" and "missing.onnx" in err.orig
    rep = next(e for e in entries if e.kind == "repair")
    assert len(rep.rounds) == 7  # the non-dict round is dropped, the rest kept


def test_html_and_markdown(results_dir, tmp_path):
    entries, problems = load_results([results_dir])
    rep = build_report(entries, problems, title="test report")
    html_path = write_report(rep, tmp_path / "r.html")
    text = html_path.read_text()
    # an interval plot per result with bounds (4) and the certificate, a projection, a repair plot
    assert text.count("data:image/png;base64,") == 7
    assert "orig.onnx  vs  comp.onnx" in text and "o2.onnx  vs  c2.onnx" in text
    assert "not_equivalent" in text and "witness" in text and "inputs not read" in text
    assert "<code>" in text and text.strip().endswith("</html>")
    md_path = write_report(rep, tmp_path / "r.md")
    md = md_path.read_text()
    pngs = sorted((tmp_path / "r_files").glob("*.png"))
    assert len(pngs) == 7
    assert all(p.read_bytes().startswith(PNG_MAGIC) for p in pngs)
    assert all(f"r_files/{p.name}" in md for p in pngs)
    assert any("projection" in p.name for p in pngs) and any("repair" in p.name for p in pngs)


def test_cli_report(results_dir, tmp_path):
    from equivrepair.cli import main

    assert main(["report", str(results_dir / "campaign.sqlite"), "--html", str(tmp_path / "a.html")]) == 0
    assert (tmp_path / "a.html").stat().st_size > 10_000
    assert main(["report", str(results_dir), "--markdown", str(tmp_path / "b.md")]) == 0
    assert main(["report", str(results_dir / "junk.json"), "--html", str(tmp_path / "c.html")]) == 3


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_html_renders_in_headless_chromium(results_dir, tmp_path):
    entries, problems = load_results([results_dir])
    page = write_report(build_report(entries, problems), tmp_path / "r.html")
    shot = tmp_path / "shot.png"
    with tempfile.TemporaryDirectory() as profile:
        cmd = [
            "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}", f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri(),
        ]  # fmt: skip
        subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    import matplotlib.image as mpimg

    img = mpimg.imread(shot)
    assert img.shape[0] >= 1000 and img.shape[1] >= 1000
    assert img[..., :3].std() > 0.05  # not a blank page


def test_verify_json_of_star_enum_carries_the_projection(tmp_path):
    """``verify --method star-enum --json`` keeps what the report plots (projection, Φ1 − Φ2 at
    the witness), and the report reads it back as the same polygons."""
    from equivrepair.cli import main

    orig, comp = _pair(3)
    save_network(orig, tmp_path / "o.onnx")
    save_network(comp, tmp_path / "c.onnx")
    (tmp_path / "box.json").write_text(json.dumps({"lower": [-1, -1], "upper": [1, 1]}))
    out = tmp_path / "v.json"
    code = main(
        ["verify", str(tmp_path / "o.onnx"), str(tmp_path / "c.onnx"), "--input-set", str(tmp_path / "box.json")]
        + ["--method", "star-enum", "--json", str(out)]
    )
    assert code == 0
    payload = json.loads(out.read_text())
    w = np.asarray(payload["witness"])
    np.testing.assert_allclose(payload["witness_delta"], orig.forward(w) - comp.forward(w), atol=1e-6)
    assert payload["projection"]["polygons"] and payload["projection"]["n_stars"] >= 1
    entries, _ = load_results([out])
    (e,) = entries
    assert e.projection["polygons"] == payload["projection"]["polygons"]
