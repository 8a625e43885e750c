"""torch nn.Sequential ⇄ FNN, and .pt/.pth files through the suffix dispatch."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from equivrepair.errors import FormatError  # noqa: E402
from equivrepair.nets.ir import FNN, Layer, random_fnn  # noqa: E402
from equivrepair.nets.load import load_network, save_network  # noqa: E402
from equivrepair.nets.torch_io import from_torch, to_torch  # noqa: E402

widths_st = st.lists(st.integers(1, 10), min_size=2, max_size=6)


def _acts(draw_bits: list[bool], n: int) -> list[str]:
    return ["relu" if b else "linear" for b in draw_bits[:n]]


@settings(max_examples=40, deadline=None)
@given(widths=widths_st, seed=st.integers(0, 2**16), bits=st.lists(st.booleans(), min_size=6, max_size=6))
def test_fnn_to_torch_and_back(widths, seed, bits):
    base = random_fnn(widths, seed=seed)
    net = FNN(tuple(Layer(la.W, la.b, a) for la, a in zip(base.layers, _acts(bits, base.depth))))
    # float64: exact both ways
    m64 = to_torch(net, dtype=torch.float64)
    back = from_torch(m64, name="b")
    x = np.random.default_rng(seed).normal(size=(20, net.n_inputs))
    with torch.no_grad():
        y_t = m64(torch.from_numpy(x)).numpy()
    assert np.allclose(y_t, net(x), rtol=1e-12, atol=1e-12)
    assert np.allclose(back(x), net(x), rtol=1e-12, atol=1e-12)
    # float32 (default): weights rounded to float32, nothing else
    m32 = to_torch(net)
    assert all(p.dtype == torch.float32 for p in m32.parameters())
    back32 = from_torch(m32)
    if all(la.activation == "relu" for la in net.layers[:-1]):  # no folding: compare weights
        for la, lb in zip(net.layers, back32.layers):
            assert np.array_equal(lb.W, la.W.astype(np.float32).astype(np.float64))
            assert la.activation == lb.activation


@settings(max_examples=40, deadline=None)
@given(
    widths=widths_st,
    seed=st.integers(0, 2**16),
    extras=st.lists(st.sampled_from(["flatten", "identity", "dropout", "relu", "nest", "nobias"]), max_size=4),
)
def test_torch_to_fnn_and_back(widths, seed, extras):
    torch.manual_seed(seed)
    mods: list[nn.Module] = [nn.Flatten()] if "flatten" in extras else []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        lin = nn.Linear(a, b, bias="nobias" not in extras or i > 0, dtype=torch.float64)
        block = [lin, nn.ReLU()] if i < len(widths) - 2 else [lin]
        if "nest" in extras and i == 0:
            block = [nn.Sequential(*block)]
        if "identity" in extras:
            block.append(nn.Identity())
        if "dropout" in extras:
            block.append(nn.Dropout(0.5))
        mods.extend(block)
    if "relu" in extras:
        mods.append(nn.ReLU())
    module = nn.Sequential(*mods).eval()
    net = from_torch(module, name="m")
    assert net.name == "m" and net.widths == widths
    x = np.random.default_rng(seed).normal(size=(20, widths[0]))
    with torch.no_grad():
        y_t = module(torch.from_numpy(x)).numpy()
    assert np.allclose(net(x), y_t, rtol=1e-12, atol=1e-12)
    again = to_torch(net, dtype=torch.float64)
    with torch.no_grad():
        assert np.allclose(again(torch.from_numpy(x)).numpy(), y_t, rtol=1e-12, atol=1e-12)


def test_consecutive_linears_fold():
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.ReLU(), nn.Linear(2, 2)).double()
    net = from_torch(module)
    assert net.widths == [3, 2, 2]
    x = np.random.default_rng(0).normal(size=(10, 3))
    with torch.no_grad():
        assert np.allclose(net(x), module(torch.from_numpy(x)).numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "bad, where",
    [
        (nn.Sequential(nn.Linear(3, 4), nn.Sigmoid(), nn.Linear(4, 2)), "1 (Sigmoid)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Sequential(nn.ReLU(), nn.Tanh())), "1.1 (Tanh)"),
        (nn.Sequential(nn.Conv2d(1, 1, 3)), "0 (Conv2d)"),
        (nn.Sequential(nn.Linear(3, 4), nn.Linear(5, 2)), "expects 5 inputs"),
        (nn.Sequential(nn.Flatten()), "no Linear"),
    ],
)
def test_unsupported_modules(bad, where):
    with pytest.raises(FormatError, match=f"^from_torch in 'bad'.*{where.replace('(', '[(]').replace(')', '[)]')}"):
        from_torch(bad, name="bad")


def test_pt_files_through_dispatch(tmp_path):
    net = random_fnn([4, 6, 3], seed=1)
    p = save_network(net, tmp_path / "net.pt")
    back = load_network(p)
    assert back.name == "net" and back.metadata["source"] == str(p)
    for la, lb in zip(net.layers, back.layers):
        assert np.array_equal(lb.W, la.W.astype(np.float32).astype(np.float64))
    # a state dict of Sequential(Linear, ReLU, Linear)
    torch.save(to_torch(net, dtype=torch.float64).state_dict(), tmp_path / "state.pth")
    st_net = load_network(tmp_path / "state.pth")
    assert st_net.content_hash == net.content_hash
    # a pickled unsupported module is refused without unpickling it
    torch.save(nn.Sequential(nn.Linear(2, 2), nn.Sigmoid()), tmp_path / "sig.pt")
    with pytest.raises(FormatError, match=r"sig\.pt.*Sigmoid"):
        load_network(tmp_path / "sig.pt")


def test_import_does_not_need_torch_in_other_modules():
    import subprocess
    import sys

    code = (
        "import sys; import equivrepair.nets.ir, equivrepair.nets.onnx_io, equivrepair.nets.nnet_io, "
        "equivrepair.nets.load, equivrepair.nets.torch_io; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
