"""`mi_est.torch` on real models of real libraries: the derived spec against one written
by hand, the equivariance check, estimates against the command's on the same file,
`mi_term` against finite differences (gradcheck) and against our trainer's step.

PyTorch, bayesian-torch, blitz, Pyro and safetensors are needed; `.ci/run` installs them
and sets MI_EST_REQUIRE_TORCH=1, so that their absence fails these tests there instead of
skipping them.
"""

import json
import re
import math
import os
import subprocess

import numpy as np
import pytest

import mi_est

if os.environ.get("MI_EST_REQUIRE_TORCH"):
    import torch  # noqa: F401 - fail, not skip
torch = pytest.importorskip("torch")
bt_layers = pytest.importorskip("bayesian_torch.layers")
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import mi_est.torch as mt  # noqa: E402

from test_mi_est import mi_est_bin  # noqa: E402

BL = bt_layers.LinearReparameterization
BC = bt_layers.Conv2dReparameterization


def randomize(model, seed=0, stats="distinct"):
    """Means and scales away from their initial values, and norm layers' statistics:
    `distinct` per channel (every unit pinned, as in a trained net), `tied` (two values
    per layer: units pinned only across the two classes) or `equal` (as initialized)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "mu_" in name or "rho_" in name or "_mu" in name or "_rho" in name:
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 if "rho" not in name else 0.5) + (-3.0 if "rho" in name else 0.0))
        for name, b in model.named_buffers():
            if stats == "equal" or not name.endswith(("running_mean", "running_var")):
                continue
            values = torch.randn(b.shape, generator=g) if stats == "distinct" else torch.randint(0, 2, b.shape, generator=g).double()
            b.copy_(values if name.endswith("running_mean") else values.abs() + 0.5)
    return model


# ---- the four models --------------------------------------------------------------------


class VGG(nn.Module):
    """conv-BN-ReLU-pool twice, then two bayesian-torch Linear layers, on 1×8×8."""

    def __init__(self):
        super().__init__()
        self.conv1 = BC(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = BC(4, 6, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(6)
        self.fc1 = BL(6 * 2 * 2, 8)
        self.fc2 = BL(8, 3)

    def forward(self, x):
        h, k1 = self.conv1(x)
        h = F.max_pool2d(F.relu(self.bn1(h)), 2)
        h, k2 = self.conv2(h)
        h = F.max_pool2d(F.relu(self.bn2(h)), 2)
        h, k3 = self.fc1(h.flatten(1))
        o, k4 = self.fc2(F.relu(h))
        return o, k1 + k2 + k3 + k4


VGG_SPEC = {
    "permutations": {"h1": 4, "h2": 6, "h3": 8},
    "axes": {
        "conv1.kernel": ["h1", None, None, None], "conv1.bias": ["h1"],
        "bn1.weight": ["h1"], "bn1.bias": ["h1"], "bn1.running_mean": ["h1"], "bn1.running_var": ["h1"],
        "conv2.kernel": ["h2", "h1", None, None], "conv2.bias": ["h2"],
        "bn2.weight": ["h2"], "bn2.bias": ["h2"], "bn2.running_mean": ["h2"], "bn2.running_var": ["h2"],
        "fc1.weight": ["h3", {"perm": "h2", "block": 4}], "fc1.bias": ["h3"],
        "fc2.weight": [None, "h3"], "fc2.bias": [None],
    },
}


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = BC(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = BC(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.project = stride != 1 or cin != cout
        if self.project:  # a projection shortcut: 1×1 conv and BN
            self.short = BC(cin, cout, 1, stride=stride, bias=False)
            self.short_bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        h, k1 = self.conv1(x)
        h = F.relu(self.bn1(h))
        h, k2 = self.conv2(h)
        h = self.bn2(h)
        if self.project:
            s, k3 = self.short(x)
            s = self.short_bn(s)
            k2 = k2 + k3
        else:
            s = x
        return F.relu(h + s), k1 + k2


class ResNet(nn.Module):
    """A stem, two stages (the second with a projection shortcut), average pool, Linear."""

    def __init__(self, width=4):
        super().__init__()
        self.stem = BC(3, width, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        self.stage1 = Block(width, width, 1)
        self.stage2 = Block(width, 2 * width, 2)
        self.fc = BL(2 * width, 5)

    def forward(self, x):
        h, kl = self.stem(x)
        h = F.relu(self.bn(h))
        h, k = self.stage1(h)
        kl = kl + k
        h, k = self.stage2(h)
        h = F.adaptive_avg_pool2d(h, 1).flatten(1)
        o, k2 = self.fc(h)
        return o, kl + k + k2


def resnet_spec(w=4):
    s1, s2 = "h1", "h4"  # the streams; h2 and h3 are the blocks' inner units, named in forward order
    return {
        "permutations": {"h1": w, "h2": w, "h3": 2 * w, "h4": 2 * w},
        "axes": {
            "stem.kernel": [s1, None, None, None],
            "bn.weight": [s1], "bn.bias": [s1], "bn.running_mean": [s1], "bn.running_var": [s1],
            "stage1.conv1.kernel": ["h2", s1, None, None],
            **{f"stage1.bn1.{t}": ["h2"] for t in ("weight", "bias", "running_mean", "running_var")},
            "stage1.conv2.kernel": [s1, "h2", None, None],
            **{f"stage1.bn2.{t}": [s1] for t in ("weight", "bias", "running_mean", "running_var")},
            "stage2.conv1.kernel": ["h3", s1, None, None],
            **{f"stage2.bn1.{t}": ["h3"] for t in ("weight", "bias", "running_mean", "running_var")},
            "stage2.conv2.kernel": [s2, "h3", None, None],
            **{f"stage2.bn2.{t}": [s2] for t in ("weight", "bias", "running_mean", "running_var")},
            "stage2.short.kernel": [s2, s1, None, None],
            **{f"stage2.short_bn.{t}": [s2] for t in ("weight", "bias", "running_mean", "running_var")},
            "fc.weight": [None, s2], "fc.bias": [None],
        },
    }


class Encoder(nn.Module):
    """A transformer encoder block: embedding, pre-LayerNorm attention with 2 heads (separate
    q, k, v, o projections), a residual MLP, mean over tokens, a Linear head."""

    def __init__(self, d_in=3, d=8, heads=2, hidden=12, classes=4):
        super().__init__()
        self.heads = heads
        self.embed = BL(d_in, d)
        self.ln1 = nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = BL(d, d), BL(d, d), BL(d, d), BL(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = BL(d, hidden)
        self.fc2 = BL(hidden, d)
        self.head = BL(d, classes)

    def forward(self, x):
        z, _ = self.embed(x)
        a = self.ln1(z)
        n, t, d = a.shape
        split = lambda u: u.view(n, t, self.heads, d // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = (split(layer(a)[0]) for layer in (self.q, self.k, self.v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
        y = (att @ v).transpose(1, 2).reshape(n, t, d)
        o, _ = self.o(y)
        z = z + o
        m, _ = self.fc1(self.ln2(z))
        m, _ = self.fc2(F.gelu(m))
        z = z + m
        out, _ = self.head(z.mean(1))
        return out


def encoder_spec():
    r, heads, mlp = "h1", {"perm": "h2", "block": 4}, "h3"
    ln = lambda name: {f"{name}.weight": [r], f"{name}.bias": [r]}  # noqa: E731
    return {
        "permutations": {"h1": 8, "h2": 2, "h3": 12},
        "axes": {
            "embed.weight": [r, None], "embed.bias": [r],
            **ln("ln1"),
            "q.weight": [heads, r], "q.bias": [heads],
            "k.weight": [heads, r], "k.bias": [heads],
            "v.weight": [heads, r], "v.bias": [heads],
            "o.weight": [r, heads], "o.bias": [r],
            **ln("ln2"),
            "fc1.weight": [mlp, r], "fc1.bias": [mlp],
            "fc2.weight": [r, mlp], "fc2.bias": [r],
            "head.weight": [None, r], "head.bias": [None],
        },
    }


def sort_axes(spec):
    return {"permutations": spec["permutations"], "axes": dict(sorted(spec["axes"].items()))}


CASES = {
    "vgg": (VGG, lambda: torch.randn(2, 1, 8, 8), VGG_SPEC),
    "resnet": (ResNet, lambda: torch.randn(2, 3, 8, 8), resnet_spec()),
    "encoder": (Encoder, lambda: torch.randn(2, 5, 3), encoder_spec()),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_derived_spec_is_the_hand_written_one(case):
    make, example, expected = CASES[case]
    torch.manual_seed(1)
    model = randomize(make())
    derived = mt.spec(model, example_input=example())
    assert sort_axes(derived) == sort_axes(expected)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_estimate_equals_the_command_on_the_state_dict_bit_for_bit(case, tmp_path):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    make, example, _ = CASES[case]
    torch.manual_seed(2)
    model = randomize(make(), seed=3, stats="tied")
    x = example()
    q = mt.from_module(model, example_input=x)
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    spec_path = tmp_path / "model.spec.json"
    spec_path.write_text(json.dumps(mt.spec(model, example_input=x)))
    cli = mi_est.Posterior.load(path, spec=str(spec_path))
    assert cli.n_params == q.n_params and cli.ln_group_order == q.ln_group_order
    out = tmp_path / "run"
    subprocess.run(
        [mi_est_bin(), "run", "--posterior", str(path), "--spec", str(spec_path), "--estimators", "infonce",
         "--k", "8", "--samples", "40", "--repeats", "1", "--seed", "5", "--out", str(out)],
        check=True, capture_output=True,
    )
    rows = mi_est.grid(path, estimators=["infonce"], k=[8], samples=40, repeats=1, seed=5, spec=str(spec_path), output="records")
    same = mi_est.grid(q, estimators=["infonce"], k=[8], samples=40, repeats=1, seed=5, output="records")
    assert rows[0]["mi_nats"] == same[0]["mi_nats"] and rows[0]["std_err_nats"] == same[0]["std_err_nats"]
    raw = read_raw(out)
    assert raw["mi_nats"] == rows[0]["mi_nats"], "the command and the package read the file alike"
    ours = mi_est.estimate(q, "infonce", k=8, samples=40, seed=rows[0]["seed"])  # the row's own seed
    assert ours.value == rows[0]["mi_nats"] and 0 < ours.value < q.ln_group_order


def read_raw(folder):
    pq = pytest.importorskip("pyarrow.parquet")
    table = pq.read_table(str(folder / "raw.parquet")).to_pylist()
    (row,) = [r for r in table if r["estimator"] == "infonce"]
    return row


def test_the_check_names_the_permutation_and_the_first_tensor_that_breaks_it():
    model = randomize(VGG())
    derived = mt._derive(model, None, torch.randn(2, 1, 8, 8))
    # A wrong derivation: fc1's input axis left unpermuted, as if the flatten kept h2 still.
    (fc1,) = [t for t in derived.tensors if t.name == "fc1.weight"]
    fc1.splits[1] = [(None, None)]
    with pytest.raises(mi_est.MiEstError, match=r"permuting `h2` changes the output; the first tensor that breaks it is `fc1.weight`"):
        mt._check(derived)


class Concat(nn.Module):
    """Two branches concatenated along their features, then one Linear layer."""

    def __init__(self):
        super().__init__()
        self.a, self.b, self.out = BL(3, 4), BL(3, 5), BL(9, 2)

    def forward(self, x):
        return self.out(torch.cat([F.relu(self.a(x)[0]), torch.tanh(self.b(x)[0])], dim=1))[0]


def test_a_concatenation_splits_the_next_layer_into_blocks():
    model = randomize(Concat())
    derived = mt._derive(model, None, None)
    mt._check(derived)
    assert derived.spec["permutations"] == {"h1": 4, "h2": 5}
    assert derived.spec["axes"]["out#0.weight"] == [None, "h1"] and derived.spec["axes"]["out#1.weight"] == [None, "h2"]
    q = mt.from_module(model)
    assert q.n_params == sum(p.numel() for n, p in model.named_parameters() if "mu_" in n)
    assert q.ln_group_order == pytest.approx(math.log(math.factorial(4) * math.factorial(5)), rel=1e-12)
    with pytest.raises(mi_est.MiEstError, match=r"splits tensors \(`out.weight`"):
        mt.spec(model)


def test_what_the_tracer_cannot_follow_is_refused_naming_the_operation():
    class Roll(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.out = BL(3, 4), BL(4, 2)

        def forward(self, x):
            return self.out(torch.roll(self.a(x)[0], 1, dims=1))[0]

    with pytest.raises(mi_est.MiEstError, match=r"`roll` \(call \d+\) in the model's forward: mi-est cannot follow `roll` on a permuted tensor"):
        mt.spec(Roll())
    with pytest.raises(mi_est.MiEstError, match="example_input"):
        mt.spec(VGG())


def resnet20_spec():
    """bayesian-torch's resnet20, written out. Stage 1's stream is h1 (16 channels); each
    block's inner units are its own (h2-h4; h5, h7, h8; h9, h11, h12). Stage 2's stream is
    16 zero-padded channels, which permute among themselves (h6, channels 0-7 and 24-31),
    around stage 1's 16 (h1, channels 8-23); stage 3's is 32 padded ones (h10) around
    stage 2's 32. A tensor with a stream axis of stage 2 or 3 is split into one piece per
    permutation on that axis, `{layer}#{j}.{part}`, in the order of their first channel."""
    perms = {"h1": 16, "h2": 16, "h3": 16, "h4": 16, "h5": 32, "h6": 16, "h7": 32, "h8": 32,
             "h9": 64, "h10": 32, "h11": 64, "h12": 64}
    stream = {1: ["h1"], 2: ["h6", "h1"], 3: ["h10", "h6", "h1"]}  # the pieces of each stream
    axes = {}

    def conv(name, outs, ins):  # a kernel with out and in channel groups, split per pair
        pairs = [(o, i) for o in outs for i in ins]
        for j, (o, i) in enumerate(pairs):
            key = f"{name}.kernel" if len(pairs) == 1 else f"{name}#{j}.kernel"
            axes[key] = [o, i, None, None]

    def bn(name, groups):
        for t in ("weight", "bias", "running_mean", "running_var"):
            for j, g in enumerate(groups):
                axes[f"{name}.{t}" if len(groups) == 1 else f"{name}#{j}.{t}"] = [g]

    conv("conv1", stream[1], [None])
    bn("bn1", stream[1])
    inner = {1: ["h2", "h3", "h4"], 2: ["h5", "h7", "h8"], 3: ["h9", "h11", "h12"]}
    for stage in (1, 2, 3):
        for b in range(3):
            into = stream[stage - 1] if (stage > 1 and b == 0) else stream[stage]
            h = inner[stage][b]
            conv(f"layer{stage}.{b}.conv1", [h], into)
            bn(f"layer{stage}.{b}.bn1", [h])
            conv(f"layer{stage}.{b}.conv2", stream[stage], [h])
            bn(f"layer{stage}.{b}.bn2", stream[stage])
    for j, g in enumerate(stream[3]):
        axes[f"linear#{j}.weight"] = [None, g]
    axes["linear.bias"] = [None]
    return {"permutations": perms, "axes": axes}


def test_bayesian_torchs_own_resnet20_zero_padded_shortcuts_included():
    """bayesian-torch's resnet20 widens the stream at each stage by zero padding its
    channels (option A): the padded channels permute among themselves, the others with
    the previous stage's stream; the check runs the model itself."""
    resnet = pytest.importorskip("bayesian_torch.models.bayesian.resnet_variational")
    torch.manual_seed(0)
    model = randomize(resnet.resnet20(), seed=8)
    x = torch.randn(2, 3, 32, 32)
    derived = mt._derive(model, None, x)
    mt._check(derived)
    assert sort_axes(derived.spec) == sort_axes(resnet20_spec())
    q = mt.from_module(model, example_input=x)
    assert q.n_params == sum(p.numel() for n, p in model.named_parameters() if "mu_" in n)
    assert q.ln_group_order == pytest.approx(sum(math.lgamma(n + 1) for n in derived.spec["permutations"].values()), rel=1e-12)


def test_a_split_posterior_saved_reads_in_the_command_alike(tmp_path):
    """The resnet20 posterior (tensors split at the padded streams; norm statistics tied in
    two classes per layer, so units are pinned across classes only) saved and run by the
    command gives the package's estimate bit for bit."""
    resnet = pytest.importorskip("bayesian_torch.models.bayesian.resnet_variational")
    torch.manual_seed(0)
    model = randomize(resnet.resnet20(), seed=9, stats="tied")
    q = mt.from_module(model, example_input=torch.randn(2, 3, 32, 32))
    path = tmp_path / "resnet20.safetensors"
    q.save(path)
    ours = mi_est.estimate(q, "infonce", k=4, samples=8, seed=2)
    assert 0 < ours.value < q.ln_group_order
    out = tmp_path / "run"
    subprocess.run(
        [mi_est_bin(), "run", "--posterior", str(path), "--estimators", "infonce", "--k", "4", "--samples", "8",
         "--repeats", "1", "--seed", "2", "--out", str(out)],
        check=True, capture_output=True,
    )
    assert read_raw(out)["mi_nats"] == mi_est.grid(q, estimators=["infonce"], k=[4], samples=8, repeats=1, seed=2, output="records")[0]["mi_nats"]


def test_a_permutation_that_reaches_the_output_or_meets_the_input_is_dropped():
    class Skip(nn.Module):  # x + f(x): the input axis cannot move, so neither can f's output
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2, self.out = BL(4, 6), BL(6, 4), BL(4, 2)

        def forward(self, x):
            h = x + self.fc2(F.relu(self.fc1(x)[0]))[0]
            return self.out(h)[0]

    spec = mt.spec(Skip())
    assert spec["permutations"] == {"h1": 6}
    assert spec["axes"]["fc2.weight"] == [None, "h1"] and spec["axes"]["out.weight"] == [None, None]


def test_flipout_layers_and_a_softmax_gate_over_features():
    """bayesian-torch's Flipout layers read as its Reparameterization ones; a softmax over
    permuted features is equivariant (softmax(Px) = P softmax(x)), so a gate made of one
    keeps its permutation, and the check confirms it by running the model."""

    class Gated(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = bt_layers.Conv2dFlipout(1, 3, 3)
            self.fc1 = bt_layers.LinearFlipout(3 * 4 * 4, 6)
            self.fc2 = bt_layers.LinearFlipout(6, 2)

        def forward(self, x):
            h, k1 = self.conv(x)
            h, k2 = self.fc1(torch.tanh(h).flatten(1))
            gate = torch.softmax(h, dim=-1)
            out, k3 = self.fc2(h * gate)
            return out, k1 + k2 + k3

    model = randomize(Gated(), seed=2)
    spec = mt.spec(model, example_input=torch.randn(2, 1, 6, 6))
    assert spec["permutations"] == {"h1": 3, "h2": 6}
    assert spec["axes"]["fc1.weight"] == ["h2", {"perm": "h1", "block": 16}]
    assert spec["axes"]["fc2.weight"] == [None, "h2"]


def test_blitz_and_pyro_modules_read_from_the_live_module():
    blitz = pytest.importorskip("blitz.modules")
    pyro = pytest.importorskip("pyro")
    from pyro.infer.autoguide import AutoNormal
    import pyro.distributions as dist
    from pyro.nn import PyroModule, PyroSample

    class Blitz(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = blitz.BayesianConv2d(1, 3, (3, 3))
            self.fc1, self.fc2 = blitz.BayesianLinear(3 * 3 * 3, 5), blitz.BayesianLinear(5, 2)

        def forward(self, x):
            h = F.relu(self.conv(x)).flatten(1)
            return self.fc2(F.relu(self.fc1(h)))

    m = Blitz()
    q = mt.from_module(m, example_input=torch.randn(2, 1, 5, 5))
    assert q.spec["permutations"] == {"h1": 3, "h2": 5}
    assert q.spec["axes"]["fc1.weight"] == ["h2", {"perm": "h1", "block": 9}]
    sigma = torch.log1p(torch.exp(m.conv.weight_rho)).detach().double().numpy()
    assert np.allclose(q.sigma()[:27], sigma.ravel(), rtol=1e-12)

    class Net(PyroModule):
        def __init__(self):
            super().__init__()
            self.fc1 = PyroModule[nn.Linear](4, 5)
            self.fc1.weight = PyroSample(dist.Normal(0.0, 1.0).expand([5, 4]).to_event(2))
            self.fc1.bias = PyroSample(dist.Normal(0.0, 1.0).expand([5]).to_event(1))
            self.fc2 = PyroModule[nn.Linear](5, 3)
            self.fc2.weight = PyroSample(dist.Normal(0.0, 1.0).expand([3, 5]).to_event(2))
            self.fc2.bias = PyroSample(dist.Normal(0.0, 1.0).expand([3]).to_event(1))

        def forward(self, x, y=None):
            logits = self.fc2(torch.relu(self.fc1(x)))
            with pyro.plate("data", x.shape[0]):
                pyro.sample("obs", dist.Categorical(logits=logits), obs=y)
            return logits

    pyro.clear_param_store()
    net = Net()
    guide = AutoNormal(net)
    guide(torch.randn(6, 4), torch.zeros(6, dtype=torch.long))
    q = mt.from_module(net, guide=guide)
    assert q.spec["permutations"] == {"h1": 5}
    assert [n for n, _ in q.layout] == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    assert np.array_equal(q.mu()[:20], guide.locs.fc1.weight.detach().double().numpy().ravel())


def test_half_precision_is_refused_naming_the_tensor():
    m = small_mlp()
    m.fc2.mu_weight.data = m.fc2.mu_weight.data.to(torch.bfloat16)
    with pytest.raises(mi_est.MiEstError, match=r"tensor `fc2.weight` has dtype bfloat16") as e:
        mt.from_module(m)
    assert e.value.field == "fc2.weight" and e.value.value == "bfloat16"
    sd = {"fc1.mu_weight": torch.zeros(3, 2, dtype=torch.float16), "fc1.rho_weight": torch.zeros(3, 2)}
    with pytest.raises(mi_est.MiEstError, match=r"tensor `fc1.mu_weight` has dtype float16") as e:
        mi_est.Posterior.from_state_dict(sd)
    assert e.value.field == "fc1.mu_weight" and e.value.value == "float16"


# ---- mi_term --------------------------------------------------------------------------------


def small_mlp():
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = BL(3, 4), BL(4, 2)

        def forward(self, x):
            h, k1 = self.fc1(x)
            o, k2 = self.fc2(F.relu(h))
            return o, k1 + k2

    return MLP()


@pytest.mark.parametrize("estimator,k", [("infonce", 6), ("sandwich", 6), ("exact-permanent", None)])
def test_mi_term_passes_gradcheck_in_float64(estimator, k):
    model = randomize(small_mlp(), seed=4).double()
    term = mt.MiTerm(model, estimator=estimator, k=k, samples=3)
    order = [piece.tensor for piece in term._order]  # whole tensors here: no pieces
    mus = [term.derived.mu(t).detach().clone().requires_grad_(True) for t in order]
    rhos = [getattr(model.get_submodule(t.module), t.rho).detach().clone().requires_grad_(True) for t in order]

    def f(*params):
        n = len(order)
        mu = torch.cat([p.reshape(-1) for p in params[:n]])
        sigma = torch.cat([torch.log1p(torch.exp(p)).reshape(-1) for p in params[n:]])
        return mt._MiTermFunction.apply(term, 7, 3, mu, sigma)

    assert torch.autograd.gradcheck(f, tuple(mus + rhos), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_mi_term_reaches_every_variational_parameter_and_only_those():
    model = randomize(VGG(), seed=6)
    x = torch.randn(2, 1, 8, 8)
    value = mt.mi_term(model, k=8, samples=2, seed=1, example_input=x)
    value.backward()
    for name, p in model.named_parameters():
        if "mu_" in name or "rho_" in name:
            assert p.grad is not None, name
    assert model.bn1.weight.grad is None
    # the same call twice gives the next step's draws, a step given gives that step's
    again = mt.mi_term(model, k=8, samples=2, seed=1, step=0, example_input=x)
    assert again.item() == value.item()


def test_bad_term_settings_are_refused_by_name():
    model = small_mlp()
    for kwargs, needle in [
        (dict(estimator="pairwise-lower"), "invalid `estimator` = 'pairwise-lower': those with a gradient are"),
        (dict(k=0), "invalid `k` = 0"),
        (dict(samples=0), "invalid `samples` = 0"),
        (dict(k=2.5), "invalid `k` = 2.5"),
    ]:
        with pytest.raises(mi_est.MiEstError, match=re.escape(needle)):
            mt.MiTerm(model, **kwargs)
    term = mt.MiTerm(model, k=2)
    for kwargs, needle in [(dict(seed=-1), "invalid `seed` = -1"), (dict(seed=1, step=-2), "invalid `step` = -2")]:
        with pytest.raises(mi_est.MiEstError, match=re.escape(needle)):
            term(**kwargs)
    with pytest.raises(mi_est.MiEstError, match="expected a torch.nn.Module"):
        mt.from_module("not a model")


def test_the_term_leaves_torchs_random_draws_alone():
    """Deriving and checking the spec runs the model (whose layers draw weights) on a fork
    of torch's generator, and the term draws from its own stream: a training loop's own
    draws are the same with the term as without."""
    model, x = randomize(VGG(), seed=1), torch.randn(2, 1, 8, 8)
    torch.manual_seed(3)
    expected = torch.randn(5)
    torch.manual_seed(3)
    mt.mi_term(model, k=4, example_input=x).backward()
    assert torch.equal(torch.randn(5), expected)


def test_training_steps_equal_our_trainers(tmp_path):
    """A 3-4-2 MLP on 16 points, three full-batch Adam steps on -(L + I^K) in PyTorch (the
    ELBO written here at the trainer's noise, the term from mi_term) against `mi-est train`
    on the same data, initial posterior and seed: the same means and scales to rounding.
    The initial posterior is the trainer's after one step at lr = 1e-300 (which moves
    nothing a float64 can see but the zero biases, by 1e-300). Without the term the
    trainer ends elsewhere, so the term's gradient is what is compared."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 3))
    y = rng.integers(0, 2, size=16)
    csv = tmp_path / "data.csv"
    csv.write_text("\n".join(",".join([f"{v:.17g}" for v in row] + [str(c)]) for row, c in zip(x, y)) + "\n")

    def train(out, lr, epochs, objective="sgm"):
        subprocess.run(
            [mi_est_bin(), "train", "--data", f"csv:{csv}", "--hidden", "4", "--batch", "16", "--seed", "11",
             "--objective", objective, "--k", "3", "--likelihood", "softmax", "--init-rho", "-0.5", "--init-mu-std", "0.2",
             "--lr", lr, "--epochs", str(epochs), "--out", str(out), "--overwrite",
             "--predictive-samples", "1", "--elbo-samples", "1", "--mi-samples", "1", "--eval-k", "2"],
            check=True, capture_output=True, text=True,
        )
        return mi_est.Posterior.load(out)

    q0 = train(tmp_path / "start.safetensors", "1e-300", 1)
    q3 = train(tmp_path / "end.safetensors", "0.01", 3)
    mfvi = train(tmp_path / "mfvi.safetensors", "0.01", 3, "mfvi")
    assert np.abs(mfvi.mu() - q3.mu()).max() > 1e-4

    model = small_mlp().double()
    layers = [(model.fc1, "weight"), (model.fc1, "bias"), (model.fc2, "weight"), (model.fc2, "bias")]
    n = 0
    with torch.no_grad():
        for layer, part in layers:
            mu, rho = getattr(layer, f"mu_{part}"), getattr(layer, f"rho_{part}")
            size = mu.numel()
            mu.copy_(torch.from_numpy(q0.mu()[n : n + size]).reshape(mu.shape))
            rho.copy_(torch.log(torch.expm1(torch.from_numpy(q0.sigma()[n : n + size]))).reshape(rho.shape))
            n += size
    params = [p for layer, part in layers for p in (getattr(layer, f"mu_{part}"), getattr(layer, f"rho_{part}"))]
    opt = torch.optim.Adam(params, lr=0.01, eps=1e-8)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for step in range(3):
        opt.zero_grad()
        eps = torch.from_numpy(mi_est._mi_est.trainer_noise(11, step, n))
        ws, k, kl = [], 0, 0.0
        for layer, part in layers:  # L = sum ln p(y | x, w) - KL(q || N(0, 1)), w = mu + sigma eps
            mu = getattr(layer, f"mu_{part}")
            sigma = torch.log1p(torch.exp(getattr(layer, f"rho_{part}")))
            ws.append(mu + sigma * eps[k : k + mu.numel()].reshape(mu.shape))
            kl = kl + (0.5 * (sigma**2 + mu**2 - 1) - torch.log(sigma)).sum()
            k += mu.numel()
        logits = F.linear(F.relu(F.linear(xt, ws[0], ws[1])), ws[2], ws[3])
        elbo = -F.cross_entropy(logits, yt, reduction="sum") - kl
        term = mt.mi_term(model, k=3, samples=1, seed=11, step=step)
        (-(elbo + term)).backward()
        opt.step()
    with torch.no_grad():
        mu = torch.cat([getattr(l, f"mu_{p}").reshape(-1) for l, p in layers]).numpy()
        sigma = torch.cat([torch.log1p(torch.exp(getattr(l, f"rho_{p}"))).reshape(-1) for l, p in layers]).numpy()
    assert np.allclose(mu, q3.mu(), rtol=0, atol=1e-10), np.abs(mu - q3.mu()).max()
    assert np.allclose(sigma, q3.sigma(), rtol=1e-10, atol=0), np.abs(sigma - q3.sigma()).max()
