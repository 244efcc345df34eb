"""The Python package against the `mi-est` command and the fixtures of the repository.

The command's binary is `$MI_EST_BIN`, else `target/release/mi-est` of the repository
(built by the README's first command); the CLI tests fail, not skip, without it.
"""

import glob
import re
import json
import os
import struct
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import mi_est

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "data" / "posteriors" / "mnist-small-784-10-10-mfvi.safetensors"
FIXTURES = ROOT / "data" / "fixtures"
SPECS = ROOT / "data" / "specs"


def mi_est_bin():
    path = Path(os.environ.get("MI_EST_BIN", ROOT / "target" / "release" / "mi-est"))
    if not path.exists():
        pytest.fail(f"the mi-est command is not at {path}: build it (cargo build --release) or set MI_EST_BIN")
    return str(path)


def read_safetensors(path):
    """{name: array} of a safetensors file, read here without the safetensors package."""
    raw = Path(path).read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = {"F64": "<f8", "F32": "<f4"}[info["dtype"]]
        start, end = info["data_offsets"]
        out[name] = np.frombuffer(data[start:end], dtype=dtype).reshape(info["shape"])
    return out


def bits(x):
    return struct.pack("<d", x)


def cli_rows(tmp_path, args):
    """The raw rows of a two-shard `mi-est run`: the shard files hold every float as its
    exact bits."""
    out = tmp_path / "run"
    for i in range(2):
        subprocess.run(
            [mi_est_bin(), "run", *args, "--num-shards", "2", "--shard-index", str(i), "--out", str(out)],
            check=True,
            capture_output=True,
        )
    rows = []
    for f in sorted(glob.glob(str(out / "raw-shard-*-of-2.jsonl"))):
        for line in Path(f).read_text().splitlines():
            rows.append(json.loads(line))
    rows.sort(key=lambda r: r["item"])
    return rows


def from_bits(h):
    return struct.unpack(">d", bytes.fromhex(h))[0]


def test_grid_and_estimate_equal_the_cli_bit_for_bit(tmp_path):
    settings = dict(
        estimators=["infonce", "sandwich", "exact", "annealed"], k=[2, 16], temperatures=[30], samples=60, repeats=2, seed=5
    )
    rows = cli_rows(
        tmp_path,
        [
            "--posterior", str(BUNDLED),
            "--estimators", "infonce,sandwich,exact,annealed",
            "--k", "2,16", "--temperatures", "30", "--samples", "60", "--repeats", "2", "--seed", "5",
        ],
    )
    ours = mi_est.grid(str(BUNDLED), output="records", **settings)
    assert len(rows) == len(ours) == 2 * 2 + 2 * 2 + 2 + 2
    q = mi_est.Posterior.load(BUNDLED)
    for cli, py in zip(rows, ours):
        # The same columns in the same order (the shard's fields are raw.parquet's), and
        # every value equal: text and counts as they are, floats bit for bit.
        assert list(py) == list(cli)
        for key, value in cli.items():
            if value is None or isinstance(py[key], (str, int)):
                assert py[key] == value, key
            elif key == "wall_s":
                assert isinstance(py[key], float)
            else:
                assert isinstance(py[key], float), key
                assert bits(from_bits(value)) == bits(py[key]), (key, cli, py)
        # One estimate with the row's seed gives the row.
        if cli["estimator"] in ("infonce", "sandwich", "annealed"):
            est = mi_est.estimate(q, cli["estimator"], k=cli["k"], samples=60, seed=cli["seed"])
        else:
            est = mi_est.estimate(q, "exact", samples=60, seed=cli["seed"])
            assert est.estimator == cli["estimator"]
        assert bits(est.value) == bits(from_bits(cli["mi_nats"]))
        assert np.isclose(est.terms.mean(), est.value, rtol=1e-12, atol=1e-12)
        if cli["upper_nats"] is not None:
            assert bits(est.upper) == bits(from_bits(cli["upper_nats"]))
            assert est.lower == est.value
            # The library's one cut to [0, ln|G|], raw bounds kept beside it.
            cut = lambda v: min(max(v, 0.0), est.ln_group_order)  # noqa: E731
            assert (est.lower_cut, est.upper_cut) == (cut(est.lower), cut(est.upper))


def test_arrays_round_trip_in_every_dtype_and_layout():
    rng = np.random.default_rng(0)
    shapes = {"fc1.weight": (4, 3), "fc1.bias": (4,), "fc2.weight": (2, 4), "fc2.bias": (2,)}
    mu = {n: rng.normal(size=s) for n, s in shapes.items()}
    sigma = {n: rng.uniform(0.1, 1.0, size=s) for n, s in shapes.items()}
    q = mi_est.Posterior.from_arrays(mu, sigma=sigma, widths=[3, 4, 2])
    assert q.widths == [3, 4, 2] and q.n_params == 26
    assert q.layout == [("layers.0.weight", (4, 3)), ("layers.0.bias", (4,)), ("layers.1.weight", (2, 4)), ("layers.1.bias", (2,))]
    flat_mu = np.concatenate([mu[n].ravel() for n in shapes])
    flat_sigma = np.concatenate([sigma[n].ravel() for n in shapes])
    assert np.array_equal(q.mu(), flat_mu)
    np.testing.assert_allclose(q.sigma(), flat_sigma, rtol=1e-15)
    assert q.mu().dtype == np.float64
    # float32 and Fortran-order arrays give the same posterior as float64 C-order ones.
    f32 = {n: v.astype(np.float32) for n, v in mu.items()}
    q32 = mi_est.Posterior.from_arrays(f32, sigma=sigma)
    assert np.array_equal(q32.mu(), np.concatenate([f32[n].ravel().astype(np.float64) for n in shapes]))
    fortran = {n: np.asfortranarray(v) for n, v in mu.items()}
    assert np.array_equal(mi_est.Posterior.from_arrays(fortran, sigma=sigma).mu(), flat_mu)
    # rho with softplus, and exp.
    rho = {n: rng.normal(size=s) for n, s in shapes.items()}
    flat_rho = np.concatenate([rho[n].ravel() for n in shapes])
    np.testing.assert_allclose(mi_est.Posterior.from_arrays(mu, rho=rho).sigma(), np.log1p(np.exp(flat_rho)), rtol=1e-14)
    np.testing.assert_allclose(
        mi_est.Posterior.from_arrays(mu, rho=rho, sigma_transform="exp").sigma(), np.exp(flat_rho), rtol=1e-14
    )


def test_save_and_load_round_trip(tmp_path):
    q = mi_est.Posterior.load(BUNDLED)
    q.save(tmp_path / "copy.safetensors")
    back = mi_est.Posterior.load(tmp_path / "copy.safetensors")
    assert np.array_equal(q.mu(), back.mu()) and np.array_equal(q.sigma(), back.sigma())
    with pytest.raises(OSError, match="already exists"):
        q.save(tmp_path / "copy.safetensors")


@pytest.mark.parametrize(
    "stem",
    ["bayesian-torch", "pyro-autonormal", "numpyro-autonormal", "tyxe-autonormal", "fortuna-names"],
)
def test_every_naming_scheme_reads_as_the_library_holds_it(stem):
    want = json.loads((FIXTURES / f"{stem}.json").read_text())
    tensors = read_safetensors(FIXTURES / f"{stem}.safetensors")
    for q in (mi_est.Posterior.from_state_dict(tensors), mi_est.Posterior.load(FIXTURES / f"{stem}.safetensors")):
        assert q.widths == want["widths"]
        assert q.schemes == [want["scheme"]]
        np.testing.assert_allclose(q.mu(), want["mu"], rtol=1e-15, atol=1e-18)
        np.testing.assert_allclose(q.sigma(), want["sigma"], rtol=1e-12)


def test_state_dict_from_an_npz_archive_of_float32():
    npz = dict(np.load(FIXTURES / "pyro-autonormal-f32.npz"))
    q = mi_est.Posterior.from_state_dict(npz)
    want = json.loads((FIXTURES / "pyro-autonormal.json").read_text())
    np.testing.assert_allclose(q.mu(), want["mu"], rtol=1e-6, atol=1e-7)


def test_state_dict_of_torch_tensors():
    torch = pytest.importorskip("torch")
    tensors = {k: torch.from_numpy(np.array(v)) for k, v in read_safetensors(FIXTURES / "bayesian-torch.safetensors").items()}
    q = mi_est.Posterior.from_state_dict(tensors)
    np.testing.assert_allclose(q.mu(), json.loads((FIXTURES / "bayesian-torch.json").read_text())["mu"], rtol=1e-15)


def test_a_spec_posterior_from_a_file_and_from_arrays():
    spec = SPECS / "cnn-small.spec.json"
    q = mi_est.Posterior.load(SPECS / "cnn-small.safetensors", spec=spec)
    assert q.widths is None and q.permutation_sizes == [3, 4]
    assert q.layout[0] == ("conv1.kernel", (3, 1, 2, 2))
    tensors = read_safetensors(SPECS / "cnn-small.safetensors")
    again = mi_est.Posterior.from_state_dict(tensors, spec=json.loads(spec.read_text()))
    assert np.array_equal(q.mu(), again.mu())
    a = mi_est.estimate(q, "exact-enumeration", samples=50, seed=1)
    b = mi_est.estimate(again, "exact", samples=50, seed=1)
    assert a.value == b.value and 0 < a.value < a.ln_group_order
    lo = mi_est.estimate(q, "sandwich", k=16, samples=50, seed=2)
    assert lo.lower <= lo.upper + 1e-9


def test_bad_input_raises_clean_exceptions():
    rng = np.random.default_rng(1)
    mu = {"fc1.weight": rng.normal(size=(4, 3)), "fc1.bias": rng.normal(size=4), "fc2.weight": rng.normal(size=(2, 4))}
    sigma = {n: np.full(v.shape, 0.5) for n, v in mu.items()}
    cases = [
        (dict(mu=mu, sigma={**sigma, "fc1.bias": np.full(5, 0.5)}), ValueError, "fc1.bias"),
        (dict(mu={**mu, "fc2.weight": np.full((2, 5), 0.1)}, sigma={**sigma, "fc2.weight": np.full((2, 5), 0.5)}), ValueError, "takes 5 inputs"),
        (dict(mu={**mu, "fc1.bias": np.array([0.0, np.nan, 0, 0])}, sigma=sigma), ValueError, "non-finite value NaN"),
        (dict(mu=mu, sigma={**sigma, "fc1.weight": -np.ones((4, 3))}), ValueError, "must be > 0"),
        (dict(mu=mu, sigma={k: v for k, v in sigma.items() if k != "fc1.bias"}), ValueError, "fc1.bias"),
        (dict(mu={**mu, "fc1.gamma": np.zeros(4)}, sigma={**sigma, "fc1.gamma": np.ones(4)}), ValueError, "fc1.gamma"),
        (dict(mu=mu, sigma=sigma, rho=sigma), ValueError, "exactly one"),
        (dict(mu=mu, sigma=sigma, widths=[3, 5, 2]), ValueError, "widths"),
        (dict(mu={**mu, "fc1.bias": ["a", "b", "c", "d"]}, sigma=sigma), TypeError, "fc1.bias"),
    ]
    for kwargs, exc, needle in cases:
        with pytest.raises(exc, match=needle) as e:
            mi_est.Posterior.from_arrays(**kwargs)
        # One exception class for what mi_est refuses, and no empty file label before the
        # message (arrays come from no file).
        assert exc is TypeError or isinstance(e.value, mi_est.MiEstError), e.value
        assert not str(e.value).startswith(":"), str(e.value)
    with pytest.raises(mi_est.MiEstError) as e:
        mi_est.Posterior.from_state_dict({"fc1.mu_weight": np.zeros((3, 2)), "fc1.rho_weight": np.zeros((3, 3))})
    assert str(e.value).startswith("`fc1.weight_rho` shape differs"), str(e.value)
    q = mi_est.Posterior.from_arrays(mu, sigma=sigma)
    for kwargs, needle in [
        (dict(estimator="magic"), "invalid `estimator` = magic"),
        (dict(estimator="infonce", k=0), "invalid `k` = 0"),
        (dict(estimator="infonce", k=None), "`k`"),
        (dict(estimator="sandwich", k=1), "invalid `k` = 1"),
        (dict(estimator="infonce", samples=0), "invalid `samples` = 0"),
        (dict(estimator="infonce", seed=-1), "invalid `seed` = -1"),
        (dict(estimator="infonce", k=10**13), "would need about"),
    ]:
        with pytest.raises(mi_est.MiEstError, match=re.escape(needle)) as e:
            mi_est.estimate(q, **kwargs)
        if "= " in needle:  # the field and value it names, as attributes
            field, value = re.match(r"invalid `(\w+)` = (\S+)", needle).groups()
            assert (e.value.field, e.value.value) == (field, value), (e.value.field, e.value.value)
    with pytest.raises(TypeError, match="posterior"):
        mi_est.estimate("not a posterior")
    with pytest.raises(OSError, match="no-such-file"):
        mi_est.Posterior.load("no-such-file.safetensors")
    with pytest.raises(ValueError, match="permutation spec"):
        mi_est.Posterior.load(SPECS / "cnn-small.safetensors", spec={"permutations": {"h1": 3}, "axes": {}})
    with pytest.raises(ValueError, match="convolution"):
        mi_est.Posterior.load(SPECS / "cnn-small.safetensors")


def test_the_gil_is_released_while_estimating():
    q = mi_est.Posterior.load(BUNDLED)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=tick)
    t.start()
    started = time.perf_counter()
    mi_est.estimate(q, "infonce", k=4096, samples=5000, seed=0)
    elapsed = time.perf_counter() - started
    done.set()
    t.join()
    during = [x for x in ticks if started <= x <= started + elapsed]
    assert elapsed > 0.05, "the estimate was too quick to tell"
    # A thread holding the GIL for the whole estimate would leave no ticks inside it.
    assert len(during) > 0.2 * elapsed / 0.0012, (len(during), elapsed)


def test_grid_returns_a_table():
    rows = mi_est.grid([mi_est.Posterior.load(BUNDLED)], estimators=["infonce"], k=[2, 4], samples=20, repeats=1, output="records")
    assert [r["k"] for r in rows] == [2, 4]
    assert rows[0]["posterior_id"] == "posterior0"
    try:
        import pandas  # noqa: F401

        df = mi_est.grid(str(BUNDLED), estimators=["infonce"], k=[2], samples=20, repeats=1, output="pandas")
        assert list(df["k"]) == [2]
    except ImportError:
        pass
    with pytest.raises(ValueError, match="estimator"):
        mi_est.grid(str(BUNDLED), estimators=["magic"], k=[2])


def test_the_layer_order_comes_from_what_states_it():
    """Issue 26: `encoder`/`decoder` (a 3-5-3 net, made by bayesian-torch) chain in both
    orders. A state_dict keeps its module order, `layers=` states one, and a file that
    states none is refused naming both candidates."""
    want = json.loads((FIXTURES / "bt-encoder-decoder.json").read_text())
    in_module_order = dict(np.load(FIXTURES / "bt-encoder-decoder.npz"))
    assert list(in_module_order)[0].startswith("encoder")
    q = mi_est.Posterior.from_state_dict(in_module_order)
    assert q.widths == [3, 5, 3]
    np.testing.assert_allclose(q.mu(), want["mu"], rtol=1e-15)
    backwards = dict(reversed(list(in_module_order.items())))
    assert mi_est.Posterior.from_state_dict(backwards).widths == [5, 3, 5]
    assert mi_est.Posterior.from_state_dict(backwards, layers=["encoder", "decoder"]).widths == [3, 5, 3]
    with pytest.raises(ValueError, match="ambiguous"):
        mi_est.Posterior.load(FIXTURES / "bt-encoder-decoder.safetensors")
    q = mi_est.Posterior.load(FIXTURES / "bt-encoder-decoder.safetensors", layers=["encoder", "decoder"])
    np.testing.assert_allclose(q.mu(), want["mu"], rtol=1e-15)
    rows = mi_est.grid(FIXTURES / "bt-encoder-decoder.safetensors", estimators=["exact"], samples=20,
                       repeats=1, layers=["encoder", "decoder"], output="records")
    assert rows[0]["ln_group_order_nats"] == pytest.approx(np.log(120.0))


def test_blitz_and_pyro_state_dicts_read_as_the_libraries_hold_them():
    for stem, rtol in (("blitz-state-dict", 1e-15), ("pyro-autonormal-state-dict", 1e-6)):
        want = json.loads((FIXTURES / f"{stem}.json").read_text())
        q = mi_est.Posterior.from_state_dict(read_safetensors(FIXTURES / f"{stem}.safetensors"))
        np.testing.assert_allclose(q.mu(), want["mu"], rtol=rtol, atol=1e-12)
        np.testing.assert_allclose(q.sigma(), want["sigma"], rtol=rtol)


def test_a_pyro_guide_reads_from_the_live_guide():
    """AutoNormal and AutoDiagonalNormal (one flat vector, unpacked with the guide's own
    site shapes) give the guide's own means and scales, in the model's order."""
    torch = pytest.importorskip("torch")
    pyro = pytest.importorskip("pyro")
    import pyro.distributions as dist
    from pyro.infer.autoguide import AutoDiagonalNormal, AutoNormal
    from pyro.nn import PyroModule, PyroSample

    class Net(PyroModule):
        def __init__(self):
            super().__init__()
            self.encoder = PyroModule[torch.nn.Linear](3, 5)
            self.encoder.weight = PyroSample(dist.Normal(0.0, 1.0).expand([5, 3]).to_event(2))
            self.encoder.bias = PyroSample(dist.Normal(0.0, 1.0).expand([5]).to_event(1))
            self.decoder = PyroModule[torch.nn.Linear](5, 3)
            self.decoder.weight = PyroSample(dist.Normal(0.0, 1.0).expand([3, 5]).to_event(2))
            self.decoder.bias = PyroSample(dist.Normal(0.0, 1.0).expand([3]).to_event(1))

        def forward(self, x):
            return self.decoder(torch.relu(self.encoder(x)))

    x = torch.zeros(2, 3)
    for guide_class in (AutoNormal, AutoDiagonalNormal):
        pyro.clear_param_store()
        pyro.set_rng_seed(0)
        guide = guide_class(Net(), init_scale=0.05)
        guide(x)
        q = mi_est.Posterior.from_pyro_guide(guide)
        assert q.widths == [3, 5, 3]
        median = guide.median()
        flat_mu = np.concatenate([median[n].detach().double().numpy().ravel()
                                  for n in ("encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias")])
        np.testing.assert_allclose(q.mu(), flat_mu, rtol=1e-15)
        np.testing.assert_allclose(q.sigma(), 0.05, rtol=1e-6)


def test_limits_are_set_per_call():
    """Limits are a value of each call (no global): the same estimate is refused within a
    tiny memory or time limit and runs within the machine's, in one process; a file is
    refused before it is read; a limit that is not a positive number is refused by name."""
    p = mi_est.Posterior.load(BUNDLED)
    with pytest.raises(ValueError, match="would need about"):
        mi_est.estimate(p, "infonce", k=64, samples=50, max_memory_gib=1e-9)
    with pytest.raises(ValueError, match="would need about"):
        mi_est.estimate(p, "sandwich", k=64, samples=50, max_hours=1e-12)
    assert mi_est.estimate(p, "infonce", k=64, samples=50).value > 0
    with pytest.raises(ValueError, match="would need about"):
        mi_est.grid(BUNDLED, estimators=["infonce"], k=[4], samples=20, repeats=1, max_memory_gib=1e-9)
    assert len(mi_est.grid(BUNDLED, estimators=["infonce"], k=[4], samples=20, repeats=1, output="records")) == 1
    with pytest.raises(ValueError, match="would need about"):
        mi_est.Posterior.load(BUNDLED, max_memory_gib=1e-9)
    for bad in (0, -1, float("nan"), "2", True):
        with pytest.raises(ValueError, match="max_memory_gib"):
            mi_est.estimate(p, "infonce", k=4, samples=10, max_memory_gib=bad)
