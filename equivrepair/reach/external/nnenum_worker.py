"""Subprocess worker that drives nnenum; run with nnenum's own interpreter.

    PYTHON nnenum_worker.py REQUEST.npz RESULT.json

It imports only numpy and nnenum (not equivrepair), so it runs in a separate virtual environment
with nnenum's pinned onnx/onnxruntime. The network comes as dense layers in the request (no ONNX
in between): ``W0, b0, W1, b1, ...`` with ``acts`` ("relu"/"linear"), the input box ``lo``/``hi``.

Modes (``mode`` in the request):

* ``version``: report nnenum's and numpy's versions;
* ``decide``: nnenum's normal verification (its VNN-COMP settings) of the disjunctive spec given as
  ``spec_k_mat``/``spec_k_rhs`` (unsafe iff ``mat @ y <= rhs`` for some k);
* ``enumerate``: exact star-set enumeration (``BRANCH_EXACT``, output stars kept), then for each
  output star and each requested output j one LP for the minimum and one for the maximum of y_j,
  with the input that attains each extreme.

The result JSON carries ``status``, the times, and mode-specific fields; any exception is
reported as ``status = "error"`` with the traceback.
"""

import json
import os
import sys
import time
import traceback

# this file sits next to equivrepair's own nnenum.py: keep its folder off the import path so that
# "import nnenum" finds the real package
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]


def _network(data):
    import numpy as np
    from nnenum.network import FullyConnectedLayer, NeuralNetwork, ReluLayer

    layers = []
    acts = [str(a) for a in data["acts"]]
    for i, act in enumerate(acts):
        W = np.array(data[f"W{i}"], dtype=float)
        b = np.array(data[f"b{i}"], dtype=float)
        layers.append(FullyConnectedLayer(len(layers), W, b))
        if act == "relu":
            layers.append(ReluLayer(len(layers), (W.shape[0],)))
    return NeuralNetwork(layers)


def _quiet_settings(Settings, timeout, processes):
    Settings.PRINT_OUTPUT = False
    Settings.PRINT_PROGRESS = False
    Settings.TIMING_STATS = False
    Settings.CHECK_SINGLE_THREAD_BLAS = False
    Settings.TIMEOUT = float("inf") if timeout is None or timeout <= 0 else float(timeout)
    if processes:
        Settings.NUM_PROCESSES = int(processes)


def _versions():
    import numpy as np

    try:
        from importlib.metadata import version

        nv = version("nnenum")
    except Exception:
        nv = "unknown"
    out = {"nnenum": nv, "numpy": np.__version__, "python": sys.version.split()[0]}
    try:
        import onnx
        import onnxruntime

        out["onnx"] = onnx.__version__
        out["onnxruntime"] = onnxruntime.__version__
    except Exception:
        pass
    return out


def run(req_path, out_path):
    import numpy as np

    t0 = time.perf_counter()
    data = np.load(req_path, allow_pickle=False)
    mode = str(data["mode"])
    res = {"versions": _versions()}
    if mode == "version":
        res["status"] = "ok"
        return res
    from nnenum import nnenum as nnenum_main
    from nnenum.enumerate import enumerate_network
    from nnenum.settings import Settings
    from nnenum.specification import DisjunctiveSpec, Specification

    net = _network(data)
    lo, hi = np.array(data["lo"], dtype=float), np.array(data["hi"], dtype=float)
    init_box = np.array([[a, b] for a, b in zip(lo, hi)], dtype=float)
    timeout = float(data["timeout"]) if "timeout" in data else None
    processes = int(data["processes"]) if "processes" in data else 0
    Settings.reset()
    if mode == "decide":
        if lo.size < 700:
            nnenum_main.set_control_settings()
        else:
            nnenum_main.set_image_settings()
        _quiet_settings(Settings, timeout, processes)
        k = 0
        specs = []
        while f"spec_{k}_mat" in data:
            specs.append(
                Specification(
                    np.array(data[f"spec_{k}_mat"], dtype=float), np.array(data[f"spec_{k}_rhs"], dtype=float)
                )
            )
            k += 1
        spec = specs[0] if len(specs) == 1 else DisjunctiveSpec(specs)
        t1 = time.perf_counter()
        r = enumerate_network(init_box, net, spec)
        res["solve_time"] = time.perf_counter() - t1
        res["result_str"] = r.result_str
        st = r.result_str
        res["status"] = (
            "unsat"
            if st == "safe"
            else "sat"
            if st == "unsafe"
            else "unknown"
            if st.startswith("unsafe")
            else ("timeout" if st == "timeout" else "unknown" if st == "none" else st)
        )
        if st == "unsafe" and r.cinput is not None:
            res["x"] = [float(v) for v in r.cinput]
            res["y"] = [float(v) for v in r.coutput]
        res["stars"] = int(r.total_stars or 0)
        res["lps"] = int(r.total_lps or 0)
    elif mode == "enumerate":
        _quiet_settings(Settings, timeout, processes)
        Settings.BRANCH_MODE = Settings.BRANCH_EXACT
        Settings.TRY_QUICK_OVERAPPROX = False
        Settings.RESULT_SAVE_STARS = True
        Settings.FIND_CONCRETE_COUNTEREXAMPLES = False
        outputs = [int(j) for j in data["outputs"]]
        t1 = time.perf_counter()
        r = enumerate_network(init_box, net, None)
        res["enum_time"] = time.perf_counter() - t1
        res["result_str"] = r.result_str
        finished = r.result_str in ("none", "safe")
        m = len(outputs)
        mins, maxs = [float("inf")] * m, [float("-inf")] * m
        argmin, argmax = [None] * m, [None] * m
        lps = 0
        t2 = time.perf_counter()
        stars = list(r.stars or [])
        for star in stars:
            for k, j in enumerate(outputs):
                for maximize in (False, True):
                    v = float(star.minimize_output(j, maximize=maximize))
                    lps += 1
                    if (maximize and v > maxs[k]) or (not maximize and v < mins[k]):
                        x = (
                            star.to_full_input(star.last_lp_result)
                            if star.a_mat.size
                            else star.to_full_input(np.zeros(0))
                        )
                        if maximize:
                            maxs[k], argmax[k] = v, [float(t) for t in x]
                        else:
                            mins[k], argmin[k] = v, [float(t) for t in x]
        res["lp_time"] = time.perf_counter() - t2
        res["status"] = "exact" if finished else ("timeout" if r.result_str == "timeout" else r.result_str)
        res["stars"] = len(stars)
        res["lps"] = lps + int(r.total_lps or 0)
        res["outputs"] = outputs
        res["min"], res["max"] = mins, maxs
        res["argmin"], res["argmax"] = argmin, argmax
    else:
        raise ValueError(f"unknown mode {mode!r}")
    res["worker_time"] = time.perf_counter() - t0
    return res


def main():
    req, out = sys.argv[1], sys.argv[2]
    try:
        res = run(req, out)
    except Exception:
        res = {"status": "error", "traceback": traceback.format_exc()}
    with open(out, "w") as fh:
        json.dump(res, fh)


if __name__ == "__main__":
    main()
