"""A bayesian-torch CNN trained on the bundled MNIST subset for one epoch, with and without
the symmetrized objective's term, and both ELBOs printed.

    python python/examples/bayesian_torch_mnist.py [--quick] [--k 20] [--epochs 1]

The CNN is conv(1→8, 3×3) → BatchNorm → ReLU → max-pool → Linear(1352→32) → ReLU →
Linear(32→10), every weight mean-field (bayesian-torch's Reparameterization layers). The
training loop is the one a bayesian-torch user writes; symmetrizing it is one line:

    loss = -(elbo + mt.mi_term(net, k=args.k, example_input=x)) / n

where `elbo` = (N/M)·Σ ln p(y | x, w) − KL for the minibatch. Both runs start from the same
initial posterior and see the same minibatches. At the end the script prints, for each,
the ELBO per data point on the whole subset (20 weight draws), the accuracy of the
predictive mean, and I^K of the trained posterior (`mi_est.estimate` on
`mt.from_module(net)`) with the most it can be: ln K for the Linear layers' units, plus
ln 8! for the conv channels once BatchNorm's running statistics differ between channels
(then each channel is pinned, and counts in full). With bayesian-torch's initial scale
(rho = -3, sigma = 0.05) the hidden units sit far apart and I^K is at ln K from the start
and to the end: the term carries no gradient, and the two runs end equal to the digits
printed. That is what the paper's I^K does on such nets (the sandwich's lower bound,
which does not saturate, has a gradient for one hidden layer only). `--rho` starts every
weight at another scale. The term draws from its own stream (seeded by torch's seed) and
the spec's derivation runs on a fork of torch's generator, so both runs see the same
minibatches and the same weight noise in their layers. `--quick` trains on 400 images
(what the test suite runs).
"""

import argparse
import gzip
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from bayesian_torch.layers import Conv2dReparameterization, LinearReparameterization

import mi_est
import mi_est.torch as mt

ROOT = Path(__file__).resolve().parents[2]


def idx(path):
    """An IDX array (the MNIST files), read with numpy."""
    raw = gzip.open(path).read()
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw[4 + 4 * len(dims) :], dtype=np.uint8).reshape(dims)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = Conv2dReparameterization(1, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.fc1 = LinearReparameterization(8 * 13 * 13, 32)
        self.fc2 = LinearReparameterization(32, 10)

    def forward(self, x):
        h, kl1 = self.conv(x)
        h = F.max_pool2d(F.relu(self.bn(h)), 2)
        h, kl2 = self.fc1(h.flatten(1))
        out, kl3 = self.fc2(F.relu(h))
        return out, kl1 + kl2 + kl3


def train(x, y, symmetrize, args):
    torch.manual_seed(args.seed)
    net = Net()
    if args.rho is not None:  # a wider initial posterior: units that overlap
        with torch.no_grad():
            for name, p in net.named_parameters():
                if "rho" in name:
                    p.fill_(args.rho)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    n = len(x)
    order = torch.Generator().manual_seed(args.seed + 1)
    for _ in range(args.epochs):
        for rows in torch.randperm(n, generator=order).split(args.batch):
            out, kl = net(x[rows])
            elbo = -F.cross_entropy(out, y[rows], reduction="sum") * n / len(rows) - kl
            if symmetrize:
                elbo = elbo + mt.mi_term(net, k=args.k, example_input=x[:2])
            loss = -elbo / n
            opt.zero_grad()
            loss.backward()
            opt.step()
    return net


def evaluate(net, x, y, draws=20):
    """The ELBO per data point (a mean over weight draws) and the predictive accuracy."""
    net.eval()  # BatchNorm on its running statistics; the weights are still drawn
    with torch.no_grad():
        elbos, probs = [], 0
        for _ in range(draws):
            out, kl = net(x)
            elbos.append(float(-F.cross_entropy(out, y, reduction="sum") - kl) / len(x))
            probs = probs + out.softmax(1) / draws
    return float(np.mean(elbos)), float((probs.argmax(1) == y).double().mean())


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="400 images (the test suite's run)")
    ap.add_argument("--k", type=int, default=20, help="K of the term I^K")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rho", type=float, default=None, help="initial rho of every weight (default: bayesian-torch's, -3)")
    args = ap.parse_args()
    images = idx(ROOT / "data" / "mnist-small" / "train-images-idx3-ubyte.gz")
    labels = idx(ROOT / "data" / "mnist-small" / "train-labels-idx1-ubyte.gz")
    if args.quick:
        images, labels = images[:400], labels[:400]
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    print(f"{len(x)} images, {args.epochs} epoch(s), batch {args.batch}, I^K with K = {args.k}")
    train(x[: args.batch], y[: args.batch], False, argparse.Namespace(**{**vars(args), "epochs": 1}))  # warm-up
    for symmetrize in (False, True):
        start = time.perf_counter()
        net = train(x, y, symmetrize, args)
        wall = time.perf_counter() - start
        elbo, accuracy = evaluate(net, x, y)
        q = mt.from_module(net, example_input=x[:2])
        est = mi_est.estimate(q, "infonce", k=args.k, samples=200, seed=args.seed)
        name = "L + I^K (symmetrized)" if symmetrize else "L (MFVI)             "
        saturated = "  (at its cap: I^K gives no gradient here)" if est.cap - est.value < 1e-3 else ""
        print(
            f"{name}  ELBO/N {elbo:+.4f}  accuracy {accuracy:.3f}  "
            f"I^K {est.value:.3f} ± {est.std_err:.3f} of at most {est.cap:.3f}  ({wall:.1f} s){saturated}"
        )


if __name__ == "__main__":
    main()
