"""One MNIST training epoch of a 784-30-10 mean-field variational MLP in PyTorch on the CPU.

The same work as `cargo bench --bench training` (benches/training.rs), written the way a
PyTorch user would write Bayes-by-backprop:

* q(w) = N(mu, softplus(rho)^2) per parameter, mu ~ N(0, 0.1^2) for weights, 0 for biases,
  rho = -3; prior N(0, 1); ReLU hidden layer; softmax likelihood;
* 600 steps of batch 100 (60,000 points), one reparameterized draw per step, Adam lr 1e-3;
* loss = -[(N/M) sum_batch ln p(y|x,w) - KL(q || p)] (MFVI), minus the paper's I^K term
  with K - 1 fresh uniform hidden-unit permutations per step for SGM:
  I^K = ln q(w) - logsumexp_j ln q(g_j^-1 . w) + ln K (j = 0 is the identity).

Usage (one thread, like the Rust bench):

    python3 benches/pytorch_epoch.py [--mnist DIR] [--threads 1] [--dtype float32|float64]
                                     [--objective mfvi|sgm] [--k 20] [--repeats 3]

DIR holds the four standard IDX gzip files (default: $MI_EST_MNIST, else the bundled
2,000-image subset in data/mnist-small tiled to 60,000 rows, which costs the same).
Prints one line per repeat and the median epoch time.
"""

import argparse
import gzip
import math
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_train(folder):
    images = read_idx(os.path.join(folder, "train-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(folder, "train-labels-idx1-ubyte.gz"))
    x = images.reshape(images.shape[0], -1).astype(np.float64) / 255.0
    y = labels.astype(np.int64)
    if x.shape[0] < 60_000:  # the bundled subset, tiled to the full set's size
        reps = math.ceil(60_000 / x.shape[0])
        x = np.tile(x, (reps, 1))[:60_000]
        y = np.tile(y, reps)[:60_000]
    return x, y


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


class MeanField(torch.nn.Module):
    def __init__(self, widths, dtype, gen):
        super().__init__()
        self.widths = widths
        self.mu, self.rho = torch.nn.ParameterList(), torch.nn.ParameterList()
        for d_in, d_out in zip(widths[:-1], widths[1:]):
            w = 0.1 * torch.randn(d_out, d_in, generator=gen, dtype=dtype)
            self.mu.append(torch.nn.Parameter(w))
            self.mu.append(torch.nn.Parameter(torch.zeros(d_out, dtype=dtype)))
            self.rho.append(torch.nn.Parameter(torch.full((d_out, d_in), -3.0, dtype=dtype)))
            self.rho.append(torch.nn.Parameter(torch.full((d_out,), -3.0, dtype=dtype)))

    def draw(self, gen):
        sigmas = [F.softplus(r) for r in self.rho]
        ws = [m + s * torch.randn(m.shape, generator=gen, dtype=m.dtype) for m, s in zip(self.mu, sigmas)]
        return ws, sigmas

    @staticmethod
    def forward_with(ws, x):
        h = x
        n_layers = len(ws) // 2
        for i in range(n_layers):
            h = F.linear(h, ws[2 * i], ws[2 * i + 1])
            if i + 1 < n_layers:
                h = F.relu(h)
        return h

    def kl(self, sigmas, prior_scale=1.0):
        total = 0.0
        for m, s in zip(self.mu, sigmas):
            total = total + (math.log(prior_scale) - torch.log(s) + (s * s + m * m) / (2 * prior_scale**2) - 0.5).sum()
        return total


def info_nce_term(model, ws, sigmas, k, gen):
    """I^K for one draw of a one-hidden-layer net: K - 1 fresh permutations of the hidden units."""
    w1, b1, w2, b2 = ws
    m1, c1, m2, c2 = model.mu
    s1, t1, s2, t2 = sigmas
    d = w1.shape[0]
    # g^-1 . w for each permutation: hidden unit i of the permuted draw is unit perm[i].
    perms = torch.stack([torch.arange(d)] + [torch.randperm(d, generator=gen) for _ in range(k - 1)])
    w1p, b1p, w2p = w1[perms], b1[perms], w2[:, perms].permute(1, 0, 2)  # (K, d, d0), (K, d), (K, d2, d)

    def ln_q(v, m, s):  # sum over all but the leading (K) axis
        z = (v - m) / s
        return (-0.5 * z * z - torch.log(s) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)

    lq = ln_q(w1p, m1, s1) + ln_q(b1p, c1, t1) + ln_q(w2p, m2, s2) + ln_q(b2.unsqueeze(0), c2, t2)
    return lq[0] - torch.logsumexp(lq, 0) + math.log(k)


def epoch(x, y, objective, k, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    model = MeanField([784, 30, 10], dtype, gen)
    opt = torch.optim.Adam(list(model.parameters()), lr=1e-3)
    n, m = x.shape[0], 100
    scale = n / m
    order = torch.randperm(n, generator=gen)
    started = time.perf_counter()
    for step in range(n // m):
        rows = order[step * m : (step + 1) * m]
        xb, yb = x[rows], y[rows]
        ws, sigmas = model.draw(gen)
        logits = MeanField.forward_with(ws, xb)
        ln_lik = -F.cross_entropy(logits, yb, reduction="sum")
        elbo = scale * ln_lik - model.kl(sigmas)
        if objective == "sgm":
            elbo = elbo + info_nce_term(model, ws, sigmas, k, gen)
        opt.zero_grad(set_to_none=True)
        (-elbo).backward()
        opt.step()
    return time.perf_counter() - started


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", default=os.environ.get("MI_EST_MNIST", os.path.join(root, "data", "mnist-small")))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--objective", choices=["mfvi", "sgm"], default="mfvi")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    xn, yn = load_train(args.mnist)
    x, y = torch.from_numpy(xn).to(dtype), torch.from_numpy(yn)
    print(f"# torch {torch.__version__}, {args.threads} thread(s), {args.dtype}, CPU: {cpu_model()}")
    print(f"# data: {args.mnist} ({x.shape[0]} rows), objective {args.objective}" + (f" K = {args.k}" if args.objective == "sgm" else ""))
    times = []
    for r in range(args.repeats + 1):
        t = epoch(x, y, args.objective, args.k, dtype, seed=r)
        if r == 0:
            print(f"warm-up epoch: {t:.3f} s")
            continue
        times.append(t)
        print(f"epoch {r}: {t:.3f} s")
    print(f"median epoch ({args.objective}, {args.dtype}, {args.threads} thread(s)): {statistics.median(times):.3f} s")


if __name__ == "__main__":
    main()
