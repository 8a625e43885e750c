"""δ over MNIST L∞ balls for the int8 QAT model itself, activation rounding included (issue #5).

Φ1 = benchmarks/results/mnist_phi1.onnx (784-256-64-10, from benchmarks/compression.py).
Φ2 = PyTorch eager-mode int8 QAT of Φ1 (fbgemm, ``int8_qat(epochs=--epochs, lr=1e-4, seed=0)`` on the
full MNIST training split, as benchmarks/compression.py), cached as results/mnist_int8.onnx with its
grids in results/mnist_int8.onnx.meta.json. Balls: clip(x ± r/255, 0, 1) around the first
``--images`` test images.

Per ball three numbers:
* ``ignored``: exact δ_max between Φ1 and the FNN with int8 weights, rounding ignored (what the
  metadata used to say it verifies);
* ``int8 lower``: max |Φ1(x) − Q(x)| of the int8 model Q itself (numpy int8 arithmetic, equal to
  torch's code for code) at the rounding model's witness and 256 samples: a real discrepancy;
* ``int8 upper``: the exact engine's bound over the rounding model (reach/rounding.py: every
  rounding error an extra input bounded by half a code): sound for Q.

    python benchmarks/int8_rounding.py --images 20 --radius 1 --timeout 60

Writes benchmarks/results/int8_rounding.{json,md,png}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from equivrepair.data.mnist import load_mnist  # noqa: E402
from equivrepair.nets.load import load_compressed, save_network  # noqa: E402
from equivrepair.nets.onnx_io import load_onnx  # noqa: E402
from equivrepair.reach.api import evaluate  # noqa: E402
from equivrepair.reach.rounding import evaluate_int8, rounding_spec, simulate_int8  # noqa: E402
from equivrepair.spec.sets import Box  # noqa: E402

RES = ROOT / "benchmarks" / "results"


def int8_network(phi1, epochs: int, log) -> tuple:
    """The cached int8 model (FNN + grids), made with int8_qat when absent."""
    path = RES / "mnist_int8.onnx"
    if path.exists() and Path(str(path) + ".meta.json").exists():
        net, _ = load_compressed(path)
        return net, json.loads(Path(str(path) + ".meta.json").read_text()).get("made", {})
    from equivrepair import compress as C

    X, y = load_mnist(split="train")
    Xt, yt = load_mnist(split="test")
    t0 = time.perf_counter()
    res = C.int8_qat(phi1, X, y, epochs=epochs, lr=1e-4, seed=0, X_test=Xt, y_test=yt, log=log)
    made = {
        "epochs": epochs,
        "seconds": time.perf_counter() - t0,
        "accuracy_fnn": res.accuracy_fnn,
        "accuracy_int8_torch": res.accuracy_int8,
        "argmax_agreement": res.agreement,
    }
    import torch

    with torch.no_grad():
        Yt = res.int8_model(torch.as_tensor(Xt, dtype=torch.float32)).double().numpy()
    Ys = simulate_int8(res.net, rounding_spec(res.net), Xt)
    made["simulator_rows_equal_to_torch"] = float(np.mean(np.all(np.abs(Yt - Ys) < 1e-4, axis=1)))
    made["accuracy_int8_simulated"] = float(np.mean(Ys.argmax(1) == yt))
    save_network(res.net, path)
    meta = {"name": res.net.name, "metadata": res.net.info()["metadata"], "made": made}
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    return load_compressed(path)[0], made


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--radius", type=int, default=1, help="radius in pixel values (r/255)")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--out", default=str(RES / "int8_rounding.json"))
    args = ap.parse_args(argv)
    phi1 = load_onnx(RES / "mnist_phi1.onnx")
    comp, made = int8_network(phi1, args.epochs, print)
    print("int8 model:", made)
    X, y = load_mnist(split="test", limit=args.images)
    r = args.radius
    rows = []
    meta = {
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg_start": os.getloadavg(),
        "args": vars(args),
        "int8": made,
    }
    print(
        f"{'img':>3} {'ignored':>10} {'st':>7} {'int8 lower':>10} {'int8 upper':>10} {'st':>7} {'t ign':>6} {'t int8':>6}"
    )
    for i in range(args.images):
        box = Box(np.clip(X[i] - r / 255, 0, 1), np.clip(X[i] + r / 255, 0, 1), label=f"linf {r}/255 image {i}")
        t0 = time.perf_counter()
        ign = evaluate(phi1, comp, box, method="exact", time_limit=args.timeout)
        t_ign = time.perf_counter() - t0
        t0 = time.perf_counter()
        q = evaluate_int8(phi1, comp, box, method="exact", time_limit=args.timeout)
        t_q = time.perf_counter() - t0
        rows.append(
            {
                "image": i,
                "ignored_status": ign.status,
                "ignored_lower": ign.lower,
                "ignored_upper": ign.upper,
                "int8_lower": q.lower,
                "int8_upper": q.upper,
                "model_status": q.model.status,
                "model_inputs": q.stats["model_inputs"],
                "clamp_neurons": q.stats["clamp_neurons"],
                "time_ignored": t_ign,
                "time_int8": t_q,
            }
        )
        print(
            f"{i:>3} {ign.upper:10.5g} {ign.status:>7} {q.lower:10.5g} {q.upper:10.5g} {q.model.status:>7} "
            f"{t_ign:6.1f} {t_q:6.1f}",
            flush=True,
        )
        Path(args.out).write_text(json.dumps({"meta": meta, "rows": rows}, indent=1, default=float))
    write_md(rows, meta, Path(args.out).with_suffix(".md"))
    plot(rows, r, Path(args.out).with_suffix(".png"))
    return 0


def write_md(rows: list[dict], meta: dict, path: Path) -> None:
    med = lambda k: float(np.median([row[k] for row in rows]))  # noqa: E731
    ratio = [row["int8_upper"] / row["ignored_upper"] for row in rows if row["ignored_upper"] > 0]
    m = meta["int8"]
    lines = [
        "# The int8 QAT model itself: δ over L∞ balls with activation rounding",
        "",
        f"Generated by `python benchmarks/int8_rounding.py --images {meta['args']['images']} --radius "
        f"{meta['args']['radius']} --timeout {meta['args']['timeout']:g}`; 2-core machine, load average at start "
        f"{tuple(round(v, 1) for v in meta['load_avg_start'])}. int8 model: test accuracy (torch) "
        f"{m.get('accuracy_int8_torch')}, FNN with rounding ignored {m.get('accuracy_fnn')}, our int8 simulator "
        f"{m.get('accuracy_int8_simulated')} (rows equal to torch's output: {m.get('simulator_rows_equal_to_torch')}).",
        "",
        "| quantity | median | max |",
        "|---|---|---|",
        f"| δ_max, rounding ignored (exact: {sum(r['ignored_status'] == 'exact' for r in rows)}/{len(rows)}) "
        f"| {med('ignored_upper'):.4g} | {max(r['ignored_upper'] for r in rows):.4g} |",
        f"| int8 model, lower (real discrepancy) | {med('int8_lower'):.4g} | {max(r['int8_lower'] for r in rows):.4g} |",
        f"| int8 model, upper (sound; model exact: {sum(r['model_status'] == 'exact' for r in rows)}/{len(rows)}) "
        f"| {med('int8_upper'):.4g} | {max(r['int8_upper'] for r in rows):.4g} |",
        f"| upper / ignored | {np.median(ratio):.3g} | {max(ratio):.3g} |",
        f"| time ignored (s) | {med('time_ignored'):.2f} | {max(r['time_ignored'] for r in rows):.2f} |",
        f"| time int8 (s) | {med('time_int8'):.2f} | {max(r['time_int8'] for r in rows):.2f} |",
        "",
        f"Images where the int8 model's real discrepancy exceeds the FNN's exact δ_max: "
        f"{sum(r['int8_lower'] > r['ignored_upper'] for r in rows)}/{len(rows)} (ignoring rounding under-reports there).",
    ]
    path.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def plot(rows: list[dict], r: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    i = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.bar(i - 0.25, [row["ignored_upper"] for row in rows], 0.25, label="δ_max, rounding ignored (FNN)")
    ax.bar(i, [row["int8_lower"] for row in rows], 0.25, label="int8 model: real discrepancy (lower)")
    ax.bar(i + 0.25, [row["int8_upper"] for row in rows], 0.25, label="int8 model: sound upper bound")
    ax.set_xlabel("MNIST test image")
    ax.set_ylabel("max |Φ1 − Φ2|∞")
    ax.set_title(f"int8 QAT model vs Φ1 over L∞ balls of radius {r}/255")
    ax.set_xticks(i)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    sys.exit(main())
