"""MNIST / Fashion-MNIST IDX loaders: shared data when present, synthetic IDX files otherwise."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from equivrepair.data import mnist as M
from equivrepair.data.mnist import MnistDataError, default_data_dir, fashion_mnist_available, load_mnist, read_idx


def _write_idx(path, arr, dtype_code=0x08, gz=False):
    arr = np.asarray(arr)
    header = struct.pack(">HBB", 0, dtype_code, arr.ndim) + struct.pack(">" + "I" * arr.ndim, *arr.shape)
    data = header + arr.astype(">u1" if dtype_code == 0x08 else arr.dtype).tobytes()
    if gz:
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def _fake_split(d, split, n, gz):
    img, lab, _ = M.MNIST_FILES[split]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    _write_idx(d / (img + (".gz" if gz else "")), images, gz=gz)
    _write_idx(d / (lab + (".gz" if gz else "")), labels, gz=gz)
    return images, labels


@pytest.fixture
def fake_dir(tmp_path, monkeypatch):
    # small synthetic sets: pretend the splits hold 12 and 5 examples
    monkeypatch.setitem(M.MNIST_FILES, "train", ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 12))
    monkeypatch.setitem(M.MNIST_FILES, "test", ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 5))
    d = tmp_path / "synthetic"
    d.mkdir()
    return d


@pytest.mark.parametrize("gz", [True, False])
def test_synthetic_roundtrip(fake_dir, gz):
    images, labels = _fake_split(fake_dir, "train", 12, gz)
    if gz:  # the stand-ins carry MNIST's file names but not its md5
        with pytest.raises(MnistDataError, match="md5"):
            load_mnist(fake_dir, "train")
    X, y = load_mnist(fake_dir, "train", verify_md5=False)
    assert X.shape == (12, 784) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(X, images.reshape(12, -1) / 255.0)
    np.testing.assert_array_equal(y, labels)
    Xb, _ = load_mnist(fake_dir, "train", scale="byte", verify_md5=False)
    assert Xb.max() <= 255 and Xb.max() > 1
    raw, _ = load_mnist(fake_dir, "train", scale=None, verify_md5=False)
    assert raw.shape == (12, 28, 28) and raw.dtype == np.uint8
    Xl, yl = load_mnist(fake_dir, "train", limit=4, verify_md5=False)
    assert Xl.shape == (4, 784) and yl.shape == (4,)


def test_bad_magic_names_file(fake_dir):
    _fake_split(fake_dir, "train", 12, gz=False)
    p = fake_dir / "train-images-idx3-ubyte"
    raw = bytearray(p.read_bytes())
    raw[0:4] = b"\x12\x34\x08\x03"
    p.write_bytes(bytes(raw))
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte.*magic"):
        load_mnist(fake_dir, "train")


def test_wrong_kind_of_file(fake_dir):
    _fake_split(fake_dir, "train", 12, gz=False)
    # swap: labels where images are expected
    (fake_dir / "train-images-idx3-ubyte").write_bytes((fake_dir / "train-labels-idx1-ubyte").read_bytes())
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte.*1 dimensions, expected 3"):
        load_mnist(fake_dir, "train")


def test_truncated_file(fake_dir):
    _fake_split(fake_dir, "train", 12, gz=True)
    p = fake_dir / "train-labels-idx1-ubyte.gz"
    data = gzip.decompress(p.read_bytes())[:-3]
    p.write_bytes(gzip.compress(data))
    with pytest.raises(MnistDataError, match="train-labels-idx1-ubyte.gz.*holds 9"):
        load_mnist(fake_dir, "train", verify_md5=False)


def test_wrong_count_and_missing(fake_dir):
    _fake_split(fake_dir, "test", 4, gz=False)  # split says 5
    with pytest.raises(MnistDataError, match="4 images, expected 5"):
        load_mnist(fake_dir, "test")
    with pytest.raises(MnistDataError, match="train-images-idx3-ubyte.*not found"):
        load_mnist(fake_dir, "train")
    with pytest.raises(ValueError, match="split"):
        load_mnist(fake_dir, "validation")


def test_md5_mismatch_detected(tmp_path):
    p = tmp_path / "t10k-labels-idx1-ubyte.gz"
    _write_idx(p, np.zeros(3, dtype=np.uint8), gz=True)
    assert M.expected_md5(p) == "ec29112dd5afa0611ce80d1b7f02629c"
    assert M.expected_md5(p, kind="fashion") is None
    with pytest.raises(MnistDataError, match="t10k-labels-idx1-ubyte.gz: md5"):
        read_idx(p, md5=M.expected_md5(p))
    assert read_idx(p).shape == (3,)


def test_default_data_dir_env(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIVREPAIR_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path / "mnist"
    with pytest.raises(ValueError):
        default_data_dir("cifar")


def test_fashion_absent_is_graceful(tmp_path, monkeypatch):
    monkeypatch.setenv("EQUIVREPAIR_DATA", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(M, "DEBIAN_FASHION_DIR", tmp_path / "nowhere")
    monkeypatch.setattr(M, "_repo_root", lambda: tmp_path / "repo")
    assert not fashion_mnist_available()
    with pytest.raises(MnistDataError, match="dataset-fashion-mnist"):
        load_mnist(split="test", kind="fashion")


def test_fashion_from_directory(fake_dir):
    _fake_split(fake_dir, "test", 5, gz=True)
    X, y = load_mnist(fake_dir, "test", kind="fashion")
    assert X.shape == (5, 784)


# -- the real files (shared data) ---------------------------------------------------------------
def test_real_mnist_test_split(data):
    d = data / "mnist"
    if not (d / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST not found in {d}")
    X, y = load_mnist(d, "test")  # md5 checked
    assert X.shape == (10000, 784) and y.shape == (10000,)
    assert X.min() == 0.0 and X.max() == 1.0
    assert np.bincount(y, minlength=10).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_real_mnist_train_labels(data):
    p = data / "mnist" / "train-labels-idx1-ubyte.gz"
    if not p.is_file():
        pytest.skip(f"{p} not found")
    y = read_idx(p, expected_ndim=1, md5=M.expected_md5(p))
    assert y.shape == (60000,) and y[:5].tolist() == [5, 0, 4, 1, 9]


def test_real_fashion_if_installed():
    if not fashion_mnist_available():
        pytest.skip("Fashion-MNIST not installed (Debian package dataset-fashion-mnist)")
    X, y = load_mnist(split="test", kind="fashion")
    assert X.shape == (10000, 784) and set(np.unique(y)) == set(range(10))
