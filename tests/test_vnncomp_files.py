"""VNN-COMP instances.csv and result files: round trips and malformed input."""

from __future__ import annotations

import numpy as np
import pytest

from equivrepair.errors import FormatError
from equivrepair.spec.vnncomp import (
    Instance,
    read_instances_csv,
    read_result_file,
    write_instances_csv,
    write_result_file,
)


def test_instances_roundtrip(tmp_path):
    bench = tmp_path / "bench"
    bench.mkdir()
    rows = [
        (bench / "onnx" / "merged.onnx", bench / "vnnlib" / "eps_0.05.vnnlib", 60),
        ("onnx/merged_both.onnx", "vnnlib/top1.vnnlib", 12.5),
    ]
    f = write_instances_csv(bench / "instances.csv", rows)
    text = f.read_text()
    assert text == "onnx/merged.onnx,vnnlib/eps_0.05.vnnlib,60\nonnx/merged_both.onnx,vnnlib/top1.vnnlib,12.5\n"
    back = read_instances_csv(f)
    assert back == [
        Instance("onnx/merged.onnx", "vnnlib/eps_0.05.vnnlib", 60.0),
        Instance("onnx/merged_both.onnx", "vnnlib/top1.vnnlib", 12.5),
    ]
    onnx, vnnlib, t = back[0].resolve(bench)
    assert onnx == (bench / "onnx" / "merged.onnx").resolve() and t == 60.0


def test_instances_errors(tmp_path):
    f = tmp_path / "instances.csv"
    f.write_text("a.onnx,b.vnnlib,10\n\na.onnx,b.vnnlib\n")
    with pytest.raises(FormatError, match=r"instances.csv:3: expected 'onnx,vnnlib,timeout', got 2 fields"):
        read_instances_csv(f)
    f.write_text("a.onnx,b.vnnlib,soon\n")
    with pytest.raises(FormatError, match=r"instances.csv:1: timeout 'soon' is not a number"):
        read_instances_csv(f)
    with pytest.raises(ValueError, match="comma"):
        write_instances_csv(f, [("a,b.onnx", "p.vnnlib", 1)])
    with pytest.raises(ValueError, match="timeout"):
        write_instances_csv(f, [("a.onnx", "p.vnnlib", 0)])


@pytest.mark.parametrize("status", ["sat", "unsat", "timeout", "unknown", "error"])
def test_result_status_roundtrip(tmp_path, status):
    f = write_result_file(tmp_path / "out.txt", status)
    assert f.read_text() == status + "\n"
    assert read_result_file(f).status == status


def test_result_counterexample_roundtrip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=5) * 1e-7
    y = rng.normal(size=3) * 1e5
    f = write_result_file(tmp_path / "out.txt", "sat", x, y)
    lines = f.read_text().splitlines()
    assert lines[0] == "sat" and lines[1].startswith("((X_0 ") and lines[-1].endswith("))")
    assert len(lines) == 1 + 5 + 3
    res = read_result_file(f)
    assert res.status == "sat"
    np.testing.assert_array_equal(res.x, x)
    np.testing.assert_array_equal(res.y, y)


def test_result_reads_other_tools_layouts(tmp_path):
    f = tmp_path / "r.txt"
    f.write_text("violated\n((X_0 1.0) (X_1 -2e-3) (Y_0 3))\n")
    res = read_result_file(f)
    assert res.status == "sat"
    np.testing.assert_array_equal(res.x, [1.0, -0.002])
    np.testing.assert_array_equal(res.y, [3.0])
    f.write_text("holds\n")
    assert read_result_file(f).status == "unsat"


def test_result_errors(tmp_path):
    f = tmp_path / "r.txt"
    with pytest.raises(ValueError):
        write_result_file(f, "maybe")
    with pytest.raises(ValueError):
        write_result_file(f, "unsat", [1.0], [2.0])
    with pytest.raises(ValueError):
        write_result_file(f, "sat", [1.0])
    f.write_text("maybe\n")
    with pytest.raises(FormatError, match=r"r.txt:1: unknown result 'maybe'"):
        read_result_file(f)
    f.write_text("sat\n((X_0 1.0)\n (X_0 2.0))\n")
    with pytest.raises(FormatError, match=r"r.txt:3: X_0 is assigned twice"):
        read_result_file(f)
    f.write_text("sat\n((X_0 1.0)\n (X_1 two))\n")
    with pytest.raises(FormatError, match=r"r.txt:3: value 'two'"):
        read_result_file(f)
    f.write_text("sat\n((X_0 1.0)\n (X_1 2.0)\n")
    with pytest.raises(FormatError, match=r"r.txt:2: unbalanced"):
        read_result_file(f)
    f.write_text("sat\n((X_1 1.0))\n")
    with pytest.raises(FormatError, match=r"assigns X_1 but not X_0"):
        read_result_file(f)
