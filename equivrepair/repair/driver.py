"""The repair loop: verify -> targets -> train -> re-verify, until the target set is met or a round limit.

This is the only module that sees both the verifier (``equivrepair.reach``) and the trainer
(``equivrepair.repair.train``, torch); it passes plain arrays and networks between them:

    round 0:  bounds_0 = verify(Φ1, Φ2, boxes)                       (any ``evaluate`` method)
    round r:  (X, Y)   = targets(strategy, Φ1, Φ2_{r-1}, bounds_{r-1}, α)
              Φ2_r     = train(Φ2_{r-1}, X, Y, labelled data)        (same grid, same masks, same widths)
              bounds_r = verify(Φ1, Φ2_r, boxes)
              stop when the target set 𝒪 holds for bounds_r (and the validation accuracy)

The trainer returns the latent float weights behind the quantized network (what QAT trains); the
driver hands them back the next round (``RepairConfig.keep_latent``), so training continues as one
QAT run interrupted by verification, not from the snapped grid values each round.

Every round is logged (``log.jsonl``: discrepancy bounds per box, accuracy, targets, training and
verification time) and checkpointed (``round_XXX.npz``: the network, the latent weights and the verification arrays),
so :func:`repair` with ``resume=True`` continues from the last completed round.

Verification of a box with fixed inputs (lower == upper) folds them into the first layer first
(:func:`fold_pair`; exact, and it turns a 784-input box with 4 free pixels
into a 4-input problem); witnesses are mapped back and re-evaluated on the full networks.

:func:`certify_boxes` computes δ_max per box for reporting (e.g. on held-out boxes): cheap
differential bounds first; when their gap is within the exact method's tolerance
(``max(atol, rtol * lower)``) the value is exact to that tolerance, otherwise the chosen exact
method runs with a time limit and the status says whether it finished.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..compress.report import accuracy as _accuracy
from ..nets.ir import FNN, Layer
from ..nets.load import load_compressed  # noqa: F401  (re-exported: repair's API)
from ..reach.api import evaluate, fold_fixed_inputs, unfold_inputs
from ..spec.sets import Box
from .targets import BoxBounds, TargetSet, make_targets
from .train import Constraint, LatentState, TrainConfig, train_constrained

__all__ = [
    "RepairConfig",
    "RepairData",
    "RepairResult",
    "VerifyConfig",
    "certify_boxes",
    "fold_pair",
    "repair",
    "verify_boxes",
    "load_checkpoint",
    "load_compressed",
    "sweep",
]

EXACT_ATOL, EXACT_RTOL = 1e-6, 1e-4  # the exact method's default tolerance (reach.bab)


# --------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------
@dataclass
class VerifyConfig:
    """How each repair box is verified: an ``evaluate`` method, a per-box time limit, folding."""

    method: str = "differential"
    time_limit: float | None = None
    fold_fixed: bool = True
    outputs: list[int] | None = None
    options: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for evaluate

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "options": dict(self.options)}


def fold_pair(orig: FNN, comp: FNN, box: Box) -> tuple[FNN, FNN, Box, Callable[[np.ndarray], np.ndarray]]:
    """Fold the fixed inputs of ``box`` into both networks' first layers.

    :func:`equivrepair.reach.api.fold_fixed_inputs` (the engine's own folding), plus ``expand(z)``
    that maps points of the folded box (one or a batch) back to full inputs. A box without fixed
    inputs, or with linear constraints, is returned unchanged (``expand`` is then the identity).
    """
    orig, comp, sub, free = fold_fixed_inputs(orig, comp, box)

    def expand(z: np.ndarray) -> np.ndarray:
        return unfold_inputs(z, box, free)

    return orig, comp, sub, expand


def _verify_one(orig: FNN, comp: FNN, box: Box, vc: VerifyConfig) -> dict[str, Any]:
    t0 = time.perf_counter()
    if vc.fold_fixed:
        o, c, b, expand = fold_pair(orig, comp, box)
    else:
        o, c, b, expand = orig, comp, box, (lambda z: np.asarray(z, dtype=np.float64))
    d = evaluate(o, c, b, method=vc.method, time_limit=vc.time_limit, outputs=vc.outputs, **vc.options)
    outs = list(range(orig.n_outputs)) if vc.outputs is None else list(vc.outputs)
    if d.witness is not None:
        w = np.clip(expand(d.witness), box.lower, box.upper)
        lower = float(np.max(np.abs((orig.forward(w) - comp.forward(w))[outs])))  # re-evaluated, full nets
    else:
        w = box.center
        lower = float(np.max(np.abs((orig.forward(w) - comp.forward(w))[outs])))
    upper = float(max(d.upper, lower))
    return {
        "per_output": np.asarray(d.per_output, dtype=np.float64),
        "lower": max(lower, 0.0),
        "upper": upper,
        "witness": w,
        "status": d.status,
        "time": time.perf_counter() - t0,
        "message": d.message,
    }


def verify_boxes(orig: FNN, comp: FNN, boxes: Sequence[Box], vc: VerifyConfig | None = None) -> BoxBounds:
    """Verify every box; returns the bounds as plain arrays (:class:`BoxBounds`)."""
    vc = vc or VerifyConfig()
    res = [_verify_one(orig, comp, b, vc) for b in boxes]
    return BoxBounds(
        lower=np.stack([b.lower for b in boxes]),
        upper=np.stack([b.upper for b in boxes]),
        per_output=np.stack([r["per_output"] for r in res]),
        delta_lower=np.array([r["lower"] for r in res]),
        delta_upper=np.array([r["upper"] for r in res]),
        witnesses=np.stack([r["witness"] for r in res]),
        status=[r["status"] for r in res],
    )


def certify_boxes(
    orig: FNN,
    comp: FNN,
    boxes: Sequence[Box],
    method: str = "exact",
    time_limit: float | None = 30.0,
    first: str | None = "differential",
    fold_fixed: bool = True,
    atol: float = EXACT_ATOL,
    rtol: float = EXACT_RTOL,
    options: dict[str, Any] | None = None,
    progress: Callable[[str], Any] | None = None,
) -> list[dict[str, Any]]:
    """δ_max of every box, as exact as the budget allows.

    Per box: ``first`` (cheap sound bounds, default differential); if ``upper - lower <=
    max(atol, rtol * lower)`` the box is ``exact`` (closed by the bounds); otherwise ``method``
    (``exact``/``milp``/...) runs with ``time_limit`` and the tighter of the two results is kept;
    ``status`` is ``exact`` only when the gap is within the tolerance. ``method=None`` skips the
    second stage (status ``bounded`` where the first did not close the gap). ``options`` go to the
    second stage's ``evaluate``; for ``exact`` they default to ``mode="max"`` (only the maximum is
    tightened, which is all δ_max needs) and this function's ``atol``/``rtol``.
    """
    out = []
    for k, box in enumerate(boxes):
        t0 = time.perf_counter()
        rec: dict[str, Any] = {"label": box.label}
        lower, upper, how = 0.0, float("inf"), []
        if first is not None:
            r = _verify_one(orig, comp, box, VerifyConfig(first, None, fold_fixed))
            lower, upper = r["lower"], r["upper"]
            how.append(first)
        if (upper - lower > max(atol, rtol * abs(lower))) and method is not None:
            opts = dict(options or {})
            if method == "exact":  # δ_max needs only the maximum, to this function's tolerance
                opts.setdefault("mode", "max")
                opts.setdefault("atol", atol)
                opts.setdefault("rtol", rtol)
            try:
                r = _verify_one(orig, comp, box, VerifyConfig(method, time_limit, fold_fixed, options=opts))
            except TypeError:  # an engine that does not take these options
                if "mode" not in opts:
                    raise
                opts.pop("mode")
                r = _verify_one(orig, comp, box, VerifyConfig(method, time_limit, fold_fixed, options=opts))
            lower, upper = max(lower, r["lower"]), min(upper, r["upper"])
            upper = max(upper, lower)
            how.append(f"{method} ({r['status']}, {r['time']:.1f}s)")
        gap = upper - lower
        rec.update(
            lower=lower,
            upper=upper,
            gap=gap,
            status="exact" if gap <= max(atol, rtol * abs(lower)) else "bounded",
            how=" -> ".join(how),
            time=time.perf_counter() - t0,
        )
        out.append(rec)
        if progress is not None and (k + 1) % 25 == 0:
            progress(f"    certified {k + 1}/{len(boxes)} boxes")
    return out


# --------------------------------------------------------------------------------------------
# the loop
# --------------------------------------------------------------------------------------------
@dataclass
class RepairConfig:
    """Everything that defines a repair run (strategy, α, rounds, training, verification, 𝒪)."""

    strategy: str = "paper"
    alpha: float = 2.0
    rounds: int = 10
    n_samples: int = 8  # distill: samples per box
    seed: int = 0
    keep_latent: bool = True  # carry the latent (pre-quantization) weights from round to round
    train: TrainConfig = field(default_factory=TrainConfig)
    verify: VerifyConfig = field(default_factory=VerifyConfig)
    target_set: TargetSet = field(default_factory=TargetSet)

    def to_json(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy,
            "alpha": self.alpha,
            "rounds": self.rounds,
            "n_samples": self.n_samples,
            "seed": self.seed,
            "keep_latent": self.keep_latent,
            "train": self.train.to_json(),
            "verify": self.verify.to_json(),
            "target_set": self.target_set.to_json(),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RepairConfig:
        return cls(
            strategy=d["strategy"],
            alpha=d["alpha"],
            rounds=d["rounds"],
            n_samples=d.get("n_samples", 8),
            seed=d.get("seed", 0),
            keep_latent=d.get("keep_latent", True),
            train=TrainConfig(**d["train"]),
            verify=VerifyConfig(**d["verify"]),
            target_set=TargetSet.from_json(d.get("target_set")),
        )


@dataclass
class RepairData:
    """Optional labelled data: ``X_lab``/``y_lab`` for the cross-entropy term, ``X_val``/``y_val``
    for the accuracy logged every round and checked against the target set's floor."""

    X_lab: np.ndarray | None = None
    y_lab: np.ndarray | None = None
    X_val: np.ndarray | None = None
    y_val: np.ndarray | None = None


@dataclass
class RepairResult:
    net: FNN
    rounds: list[dict[str, Any]]
    met: bool
    reason: str
    constraint: Constraint
    config: RepairConfig
    seconds: float
    bounds: BoxBounds | None = None  # verification of the final network
    initial_bounds: BoxBounds | None = None  # verification of the compressed network (round 0)

    @property
    def initial(self) -> dict[str, Any]:
        return self.rounds[0]

    @property
    def final(self) -> dict[str, Any]:
        return self.rounds[-1]

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config.to_json(),
            "constraint": self.constraint.describe(),
            "met": self.met,
            "reason": self.reason,
            "seconds": self.seconds,
            "sha256": self.net.content_hash,
            "rounds": self.rounds,
        }


def _boxes_hash(boxes: Sequence[Box]) -> str:
    h = hashlib.sha256()
    for b in boxes:
        h.update(np.ascontiguousarray(b.lower, dtype="<f8").tobytes())
        h.update(np.ascontiguousarray(b.upper, dtype="<f8").tobytes())
    return h.hexdigest()


def _record(
    r: int, net: FNN, bounds: BoxBounds, acc: float | None, ts: TargetSet, extra: dict[str, Any]
) -> dict[str, Any]:
    met, why = ts.check(bounds.delta_upper, acc)
    return {
        "round": r,
        "sha256": net.content_hash,
        "accuracy": acc,
        "delta_upper_max": float(np.max(bounds.delta_upper)),
        "delta_upper_mean": float(np.mean(bounds.delta_upper)),
        "delta_lower_max": float(np.max(bounds.delta_lower)),
        "delta_lower_mean": float(np.mean(bounds.delta_lower)),
        "n_exact": int(sum(s == "exact" for s in bounds.status)),
        "boxes": {
            "lower": bounds.delta_lower.tolist(),
            "upper": bounds.delta_upper.tolist(),
            "status": list(bounds.status),
        },
        "met": met,
        "why_not": why,
        **extra,
    }


def _save_checkpoint(path: Path, net: FNN, bounds: BoxBounds, latent: LatentState | None = None) -> None:
    arrays: dict[str, Any] = {f"W{i}": layer.W for i, layer in enumerate(net.layers)}
    if latent is not None:
        arrays.update(latent.arrays())
    arrays.update({f"b{i}": layer.b for i, layer in enumerate(net.layers)})
    arrays["activations"] = np.asarray([layer.activation for layer in net.layers])
    arrays.update(bounds.arrays())
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)


def load_checkpoint(path: str | Path, like: FNN) -> tuple[FNN, BoxBounds, LatentState | None]:
    """The network (with ``like``'s metadata and name), the verification arrays and the latent
    training weights (``None`` for round 0) of a checkpoint."""
    with np.load(path, allow_pickle=False) as z:
        acts = [str(a) for a in z["activations"]]
        layers = [Layer(z[f"W{i}"], z[f"b{i}"], a) for i, a in enumerate(acts)]
        bounds = BoxBounds.from_arrays(z)
        latent = LatentState.from_arrays(z, len(acts))
    return like.with_layers(layers), bounds, latent


def _repaired_metadata(comp: FNN, orig: FNN, cfg: RepairConfig, met: bool, rounds: int) -> dict[str, Any]:
    md = dict(comp.metadata)
    md["repair"] = {
        "strategy": cfg.strategy,
        "alpha": cfg.alpha,
        "rounds": rounds,
        "target_set": cfg.target_set.to_json(),
        "target_set_met": met,
        "original_sha256": orig.content_hash,
        "compressed_sha256": comp.content_hash,
        "note": "weights retrained on the compressed network's grid (same scales and zero points) and masks",
    }
    return md


def repair(
    orig: FNN,
    comp: FNN,
    boxes: Sequence[Box],
    config: RepairConfig | None = None,
    data: RepairData | None = None,
    constraint: Constraint | None = None,
    log_dir: str | Path | None = None,
    resume: bool = False,
    initial_bounds: BoxBounds | None = None,
    progress: Callable[[str], Any] | None = None,
) -> RepairResult:
    """Repair ``comp`` towards ``orig`` on ``boxes`` (see the module docstring).

    ``constraint`` defaults to :meth:`Constraint.of(comp) <equivrepair.repair.train.Constraint.of>`.
    ``initial_bounds`` may pass a verification of ``comp`` already done (shared by runs that differ
    only in α). With ``log_dir`` every round is logged and checkpointed there; ``resume=True``
    continues a run from its log (the networks, boxes and configuration must match, except the
    round limit, which may grow).
    """
    cfg = config or RepairConfig()
    data = data or RepairData()
    say = progress or (lambda s: None)
    if not boxes:
        raise ValueError("repair needs at least one box")
    for b in boxes:
        b.check_dim(orig.n_inputs)
    c = constraint or Constraint.of(comp)
    bad = c.violations(comp)
    if bad:
        raise ValueError("the compressed network does not satisfy its own constraint: " + "; ".join(bad))
    t_start = time.perf_counter()
    ident = {
        "orig_sha256": orig.content_hash,
        "comp_sha256": comp.content_hash,
        "boxes_sha256": _boxes_hash(boxes),
        "n_boxes": len(boxes),
    }
    log_path = ck_dir = None
    rounds: list[dict[str, Any]] = []
    net, bounds, latent = comp, initial_bounds, None
    if log_dir is not None:
        ck_dir = Path(log_dir)
        log_path = ck_dir / "log.jsonl"
        run_path = ck_dir / "run.json"
        if resume and log_path.is_file() and run_path.is_file():
            old = json.loads(run_path.read_text())
            old_cfg = dict(old["config"], rounds=None)
            if old["ident"] != ident or old_cfg != dict(cfg.to_json(), rounds=None):
                raise ValueError(f"{ck_dir}: cannot resume: the networks, boxes or configuration differ from the log")
            lines = [json.loads(s) for s in log_path.read_text().splitlines() if s.strip()]
            while lines and not (ck_dir / f"round_{lines[-1]['round']:03d}.npz").is_file():
                lines.pop()
            if lines:
                rounds = lines
                net, bounds, latent = load_checkpoint(ck_dir / f"round_{rounds[-1]['round']:03d}.npz", comp)
                if (ck_dir / "round_000.npz").is_file():
                    initial_bounds = load_checkpoint(ck_dir / "round_000.npz", comp)[1]
                say(f"resumed from {ck_dir} after round {rounds[-1]['round']}")
        elif ck_dir.exists() and not resume:
            for p in list(ck_dir.glob("round_*.npz")) + [log_path, run_path]:
                if p.exists():
                    p.unlink()
        ck_dir.mkdir(parents=True, exist_ok=True)
        run_path.write_text(json.dumps({"ident": ident, "config": cfg.to_json(), "constraint": c.describe()}, indent=1))
        if rounds:  # rewrite the log without rounds whose checkpoint is missing
            log_path.write_text("".join(json.dumps(r) + "\n" for r in rounds))

    def val_acc(n: FNN) -> float | None:
        if data.X_val is None or data.y_val is None or len(data.X_val) == 0:
            return None
        return _accuracy(n, data.X_val, data.y_val)

    def commit(rec: dict[str, Any], n: FNN, bd: BoxBounds, lat: LatentState | None = None) -> None:
        rounds.append(rec)
        if ck_dir is not None:
            _save_checkpoint(ck_dir / f"round_{rec['round']:03d}.npz", n, bd, lat)
            with open(log_path, "a") as fh:
                fh.write(json.dumps(rec) + "\n")
        acc = "" if rec["accuracy"] is None else f", val acc {rec['accuracy']:.4f}"
        say(
            f"  round {rec['round']:2d}: δ upper max {rec['delta_upper_max']:.4g} mean {rec['delta_upper_mean']:.4g}"
            f" (witnessed max {rec['delta_lower_max']:.4g}){acc} [{rec['time']['round']:.1f}s]"
            + (" target set met" if rec["met"] else "")
        )

    if not rounds:
        t0 = time.perf_counter()
        if bounds is None:
            bounds = verify_boxes(orig, net, boxes, cfg.verify)
        initial_bounds = bounds
        tv = time.perf_counter() - t0
        rec = _record(0, net, bounds, val_acc(net), cfg.target_set, {"time": {"verify": tv, "round": tv}})
        commit(rec, net, bounds)

    reason = "round limit"
    while True:
        last = rounds[-1]
        if last["met"]:
            reason = "target set met"
            break
        r = last["round"] + 1
        if r > cfg.rounds:
            break
        t0 = time.perf_counter()
        tg = make_targets(cfg.strategy, orig, net, bounds, cfg.alpha, cfg.n_samples, cfg.seed + r)
        t1 = time.perf_counter()
        tcfg = TrainConfig(**dict(cfg.train.to_json(), seed=cfg.train.seed + r))
        tr = train_constrained(
            net,
            tg.X,
            tg.Y,
            data.X_lab,
            data.y_lab,
            config=tcfg,
            constraint=c,
            W_fit=tg.weights,
            latent=latent if cfg.keep_latent else None,
        )
        t2 = time.perf_counter()
        net, latent = tr.net, tr.latent
        bounds = verify_boxes(orig, net, boxes, cfg.verify)
        t3 = time.perf_counter()
        rec = _record(
            r,
            net,
            bounds,
            val_acc(net),
            cfg.target_set,
            {
                "targets": tg.info,
                "train": {"steps": tr.steps, "loss": tr.final_loss},
                "time": {"targets": t1 - t0, "train": t2 - t1, "verify": t3 - t2, "round": t3 - t0},
            },
        )
        commit(rec, net, bounds, latent)
    out = net.replace(
        metadata=_repaired_metadata(comp, orig, cfg, rounds[-1]["met"], rounds[-1]["round"]),
        name=f"{comp.name or 'comp'}-repaired",
    )
    return RepairResult(
        out, rounds, rounds[-1]["met"], reason, c, cfg, time.perf_counter() - t_start, bounds, initial_bounds
    )


def sweep(
    orig: FNN,
    comp: FNN,
    boxes: Sequence[Box],
    alphas: Sequence[float],
    config: RepairConfig | None = None,
    data: RepairData | None = None,
    constraint: Constraint | None = None,
    log_dir: str | Path | None = None,
    resume: bool = False,
    progress: Callable[[str], Any] | None = None,
) -> dict[float, RepairResult]:
    """:func:`repair` for every α (the verification of ``comp`` is done once and shared).

    Logs go to ``log_dir/alpha_<α>/`` when ``log_dir`` is given.
    """
    cfg = config or RepairConfig()
    say = progress or (lambda s: None)
    initial = None
    out: dict[float, RepairResult] = {}
    for a in alphas:
        run_cfg = RepairConfig(**{**cfg.__dict__, "alpha": float(a)})
        sub = None if log_dir is None else Path(log_dir) / f"alpha_{float(a):g}"
        say(f"repair: strategy {cfg.strategy}, alpha {float(a):g}")
        res = repair(orig, comp, boxes, run_cfg, data, constraint, sub, resume, initial, progress)
        initial = initial if initial is not None else res.initial_bounds
        out[float(a)] = res
    return out
