"""MNIST and Fashion-MNIST loaders for the IDX files (``.gz`` or raw), numpy only.

``load_mnist(data_dir, split, kind)`` returns ``(X, y)`` with ``X`` float64 of shape (N, 784) in
[0, 1] (``scale="unit"``; ``scale="byte"`` keeps 0..255 as float64, ``scale=None`` returns the raw
uint8 array of shape (N, 28, 28)) and ``y`` int64. Magic numbers, dimensions and file sizes are
checked, with errors that name the file; for the four MNIST files whose md5 is published the digest
is checked too (``verify_md5=False`` skips it).

Where the files are looked for: :func:`default_data_dir` (``$EQUIVREPAIR_DATA/mnist``, else
``../shared/data/mnist`` next to the current directory or the repository). Fashion-MNIST is looked
for in ``$EQUIVREPAIR_DATA/fashion-mnist``, ``../shared/data/fashion-mnist`` and in
``/usr/share/datasets/fashion-mnist`` (Debian package ``dataset-fashion-mnist``);
:func:`fashion_mnist_available` says whether any of them holds the files.

:func:`download_mnist` fetches MNIST from a public mirror and checks the md5; nothing in the package
calls it implicitly and the tests never use the network.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np

from ..errors import FormatError

__all__ = [
    "MNIST_MD5",
    "MNIST_FILES",
    "MnistDataError",
    "default_data_dir",
    "download_mnist",
    "fashion_mnist_available",
    "find_idx_file",
    "load_mnist",
    "read_idx",
    "expected_md5",
]


class MnistDataError(FormatError):
    """An IDX file that is missing, truncated, of the wrong type or with a wrong checksum."""


# file stem -> md5 of the gzipped file as distributed (LeCun's site and its mirrors)
MNIST_MD5 = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}

MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_KIND_DIRS = {"mnist": ("mnist",), "fashion": ("fashion-mnist", "fashion_mnist", "fashion")}
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def _repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def _candidate_roots() -> list[Path]:
    roots = []
    env = os.environ.get("EQUIVREPAIR_DATA")
    if env:
        roots.append(Path(env))
    roots.append(Path.cwd().parent / "shared" / "data")
    roots.append(_repo_root().parent / "shared" / "data")
    return roots


def default_data_dir(kind: str = "mnist") -> Path:
    """Where the IDX files of ``kind`` are expected.

    ``$EQUIVREPAIR_DATA/<kind dir>`` when the variable is set; otherwise the first of
    ``../shared/data/<kind dir>`` relative to the current directory and to the repository that
    exists (the former when neither does). For Fashion-MNIST the Debian package location
    ``/usr/share/datasets/fashion-mnist`` is used when the others are absent.
    """
    names = _KIND_DIRS.get(kind)
    if names is None:
        raise ValueError(f"unknown dataset kind {kind!r} (known: mnist, fashion)")
    env = os.environ.get("EQUIVREPAIR_DATA")
    if env:
        for name in names:
            if (Path(env) / name).is_dir():
                return Path(env) / name
        if kind == "mnist":
            return Path(env) / names[0]
    for root in _candidate_roots():
        for name in names:
            if (root / name).is_dir():
                return root / name
    if kind == "fashion" and DEBIAN_FASHION_DIR.is_dir():
        return DEBIAN_FASHION_DIR
    return _candidate_roots()[0] / names[0]


def find_idx_file(data_dir: str | Path, stem: str) -> Path:
    """The IDX file ``stem`` in ``data_dir``: ``stem.gz``, ``stem`` or the ``stem.idx?-ubyte`` spellings."""
    d = Path(data_dir)
    alternatives = [stem, stem.replace("-idx", ".idx")]
    for alt in alternatives:
        for name in (alt + ".gz", alt):
            if (d / name).is_file():
                return d / name
    raise MnistDataError(
        f"IDX file {stem}(.gz) not found in {d}"
        + ("" if d.is_dir() else " (the directory does not exist)")
        + "; set EQUIVREPAIR_DATA or pass the directory (download_mnist(dest) fetches MNIST)"
    )


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def expected_md5(path: str | Path, kind: str = "mnist") -> str | None:
    """The published md5 of an MNIST ``.gz`` file (by name), ``None`` for other files and kinds."""
    name = Path(path).name
    if kind != "mnist" or not name.endswith(".gz"):
        return None
    return MNIST_MD5.get(name[:-3])


def read_idx(path: str | Path, expected_ndim: int | None = None, md5: str | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or raw) into an array, checking magic number and size.

    ``md5``: the expected digest of the file as stored (``expected_md5(path)`` for MNIST), checked
    before reading.
    """
    path = Path(path)
    if not path.is_file():
        raise MnistDataError(f"{path}: no such file")
    if md5 is not None:
        got = _md5(path)
        if got != md5:
            raise MnistDataError(f"{path}: md5 {got} does not match the published {md5} (corrupt download?)")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                raw = fh.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError) as exc:
        raise MnistDataError(f"{path}: cannot read ({exc})") from exc
    if len(raw) < 4:
        raise MnistDataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    zero, dtype_code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code not in _IDX_DTYPES or ndim == 0:
        raise MnistDataError(f"{path}: bad IDX magic number 0x{raw[:4].hex()} (not an IDX file?)")
    if expected_ndim is not None and ndim != expected_ndim:
        raise MnistDataError(
            f"{path}: IDX file has {ndim} dimensions, expected {expected_ndim} "
            f"(magic 0x{raw[:4].hex()}; images are 0x00000803, labels 0x00000801)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistDataError(f"{path}: truncated IDX header")
    dims = struct.unpack(">" + "I" * ndim, raw[4:header])
    dtype = np.dtype(_IDX_DTYPES[dtype_code])
    expected = int(np.prod(dims)) * dtype.itemsize
    if len(raw) - header != expected:
        raise MnistDataError(
            f"{path}: header says shape {dims} ({expected} bytes of data) but the file holds {len(raw) - header}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).copy()


def load_mnist(
    data_dir: str | Path | None = None,
    split: str = "train",
    kind: str = "mnist",
    scale: str | None = "unit",
    verify_md5: bool = True,
    limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST (``kind="mnist"``) or Fashion-MNIST (``kind="fashion"``).

    ``split`` is ``"train"`` (60 000) or ``"test"`` (10 000). ``scale="unit"`` gives float64 in
    [0, 1] of shape (N, 784); ``"byte"`` float64 in [0, 255]; ``None`` the raw uint8 (N, 28, 28).
    ``limit`` keeps the first ``limit`` examples. Labels are int64. For MNIST ``.gz`` files the
    published md5 is checked (``verify_md5=False`` skips it, e.g. for re-compressed copies).
    """
    if split not in MNIST_FILES:
        raise ValueError(f"unknown split {split!r} (use 'train' or 'test')")
    if kind not in _KIND_DIRS:
        raise ValueError(f"unknown dataset kind {kind!r} (use 'mnist' or 'fashion')")
    if scale not in ("unit", "byte", None):
        raise ValueError(f"unknown scale {scale!r} (use 'unit', 'byte' or None)")
    d = Path(data_dir) if data_dir is not None else default_data_dir(kind)
    if kind == "fashion" and data_dir is None and not d.is_dir():
        raise MnistDataError(
            f"Fashion-MNIST not found (looked in $EQUIVREPAIR_DATA, ../shared/data and {DEBIAN_FASHION_DIR}; "
            "install the Debian package dataset-fashion-mnist or pass data_dir)"
        )
    img_stem, lab_stem, n_expected = MNIST_FILES[split]
    img_path = find_idx_file(d, img_stem)
    lab_path = find_idx_file(d, lab_stem)
    images = read_idx(img_path, expected_ndim=3, md5=expected_md5(img_path, kind) if verify_md5 else None)
    labels = read_idx(lab_path, expected_ndim=1, md5=expected_md5(lab_path, kind) if verify_md5 else None)
    if images.dtype != np.uint8 or labels.dtype != np.uint8:
        raise MnistDataError(f"{img_path} / {lab_path}: expected unsigned-byte IDX data")
    if images.shape[1:] != (28, 28):
        raise MnistDataError(f"{img_path}: images are {images.shape[1:]}, expected 28x28")
    if images.shape[0] != labels.shape[0]:
        raise MnistDataError(f"{img_path} has {images.shape[0]} images but {lab_path} has {labels.shape[0]} labels")
    if images.shape[0] != n_expected:
        raise MnistDataError(f"{img_path}: {images.shape[0]} images, expected {n_expected} for the {split} split")
    if labels.max(initial=0) > 9:
        raise MnistDataError(f"{lab_path}: label {int(labels.max())} out of range 0..9")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    y = labels.astype(np.int64)
    if scale is None:
        return images, y
    X = images.reshape(images.shape[0], -1).astype(np.float64)
    if scale == "unit":
        X /= 255.0
    return X, y


def fashion_mnist_available(data_dir: str | Path | None = None) -> bool:
    """Whether Fashion-MNIST IDX files can be found (in ``data_dir`` or the default places)."""
    d = Path(data_dir) if data_dir is not None else default_data_dir("fashion")
    try:
        for img, lab, _ in MNIST_FILES.values():
            find_idx_file(d, img)
            find_idx_file(d, lab)
    except MnistDataError:
        return False
    return True


def download_mnist(dest: str | Path | None = None, mirrors: tuple[str, ...] = MIRRORS, timeout: float = 60.0) -> Path:
    """Download the four MNIST ``.gz`` files into ``dest`` (default :func:`default_data_dir`), checking md5.

    Files already present with the right digest are kept. Uses the network; never called by tests.
    """
    import urllib.request

    d = Path(dest) if dest is not None else default_data_dir("mnist")
    d.mkdir(parents=True, exist_ok=True)
    for stem, md5 in MNIST_MD5.items():
        target = d / (stem + ".gz")
        if target.is_file() and _md5(target) == md5:
            continue
        errors = []
        for mirror in mirrors:
            tmp = target.with_suffix(".gz.part")
            try:
                with urllib.request.urlopen(mirror + stem + ".gz", timeout=timeout) as resp, open(tmp, "wb") as fh:
                    fh.write(resp.read())
            except OSError as exc:
                errors.append(f"{mirror}: {exc}")
                continue
            got = _md5(tmp)
            if got != md5:
                tmp.unlink(missing_ok=True)
                errors.append(f"{mirror}: md5 {got} != {md5}")
                continue
            tmp.replace(target)
            break
        else:
            raise MnistDataError(f"could not download {stem}.gz: " + "; ".join(errors))
    return d
