"""A mean-field variational MLP trained in plain PyTorch, then its I(g; w) without
leaving Python; and the same numbers from the `mi-est` command.

    python python/examples/train_and_estimate.py [--steps 300] [--samples 1000]

Trains a 784-10-10 MLP whose weights are N(mu, softplus(rho)^2) on the bundled MNIST
subset (data/mnist-small, 2,000 digits), for a few hundred Adam steps on the ELBO. Its
parameters are named like blitz's (`fc1.weight_mu`, `fc1.weight_rho`, ...), a scheme
`mi_est.Posterior.from_state_dict` reads. The example then estimates I(g; w) with the
paper's I^K and with the sandwich bounds. If the `mi-est` command is found
($MI_EST_BIN, else target/release/mi-est), it runs the same grid with the command and
checks that every number is equal, bit for bit. Without torch it says so and exits.
"""

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError:
    print("skipped: this example needs torch (pip install torch)")
    sys.exit(0)

import mi_est

ROOT = Path(__file__).resolve().parents[2]


def idx(path):
    raw = gzip.open(path).read()
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(raw[3])]
    return np.frombuffer(raw[4 + 4 * len(dims) :], dtype=np.uint8).reshape(dims)


class MeanFieldLinear(torch.nn.Module):
    """y = W x + b with W, b ~ N(mu, softplus(rho)^2), one draw per forward pass."""

    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight_mu = torch.nn.Parameter(torch.randn(d_out, d_in, dtype=torch.float64) / d_in**0.5)
        self.weight_rho = torch.nn.Parameter(torch.full((d_out, d_in), -5.0, dtype=torch.float64))
        self.bias_mu = torch.nn.Parameter(torch.zeros(d_out, dtype=torch.float64))
        self.bias_rho = torch.nn.Parameter(torch.full((d_out,), -5.0, dtype=torch.float64))

    def forward(self, x):
        sw = torch.nn.functional.softplus(self.weight_rho)
        sb = torch.nn.functional.softplus(self.bias_rho)
        w = self.weight_mu + sw * torch.randn_like(sw)
        b = self.bias_mu + sb * torch.randn_like(sb)
        return x @ w.T + b

    def kl(self):
        """KL(q || N(0, I))."""
        kl = 0.0
        for mu, rho in ((self.weight_mu, self.weight_rho), (self.bias_mu, self.bias_rho)):
            s = torch.nn.functional.softplus(rho)
            kl = kl + (-torch.log(s) + (s**2 + mu**2) / 2 - 0.5).sum()
        return kl


def cli_rows(binary, posterior, settings):
    """The command's raw rows for `settings`, floats as exact bits (two shards)."""
    with tempfile.TemporaryDirectory() as out:
        for i in range(2):
            subprocess.run(
                [binary, "run", "--posterior", str(posterior), *settings, "--num-shards", "2",
                 "--shard-index", str(i), "--out", out],
                check=True, capture_output=True,
            )
        rows = [json.loads(line) for f in sorted(Path(out).glob("raw-shard-*.jsonl")) for line in f.read_text().splitlines()]
    return sorted(rows, key=lambda r: r["item"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    x = torch.from_numpy(idx(ROOT / "data/mnist-small/train-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0)
    y = torch.from_numpy(idx(ROOT / "data/mnist-small/train-labels-idx1-ubyte.gz").astype(np.int64))
    fc1, fc2 = MeanFieldLinear(784, 10), MeanFieldLinear(10, 10)
    net = torch.nn.ModuleDict({"fc1": fc1, "fc2": fc2})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    started = time.perf_counter()
    for step in range(args.steps):
        batch = torch.randint(0, len(x), (100,))
        logits = fc2(torch.relu(fc1(x[batch])))
        nll = torch.nn.functional.cross_entropy(logits, y[batch], reduction="mean") * len(x)
        loss = (nll + fc1.kl() + fc2.kl()) / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (fc2(torch.relu(fc1(x))).argmax(1) == y).double().mean().item()
    print(f"trained {args.steps} steps in {time.perf_counter() - started:.1f} s: -ELBO/N = {loss.item():.4f}, train accuracy {acc:.3f}")

    # The state_dict as it is: `fc1.weight_mu`, `fc1.weight_rho`, ... (blitz's names).
    q = mi_est.Posterior.from_state_dict(net.state_dict())
    print(q, "read as", q.schemes)
    started = time.perf_counter()
    ik = mi_est.estimate(q, "infonce", k=args.k, samples=args.samples, seed=args.seed)
    t_ik = time.perf_counter() - started
    started = time.perf_counter()
    sw = mi_est.estimate(q, "sandwich", k=args.k, samples=args.samples, seed=args.seed)
    t_sw = time.perf_counter() - started
    print(f"I^{args.k}      = {ik.value:.4f} ± {ik.std_err:.4f} nats (cap ln K = {ik.cap:.4f}; {t_ik * 1e3:.1f} ms)")
    print(f"sandwich K={args.k}: I in [{sw.lower:.4f}, {sw.upper:.4f}] nats (ln|G| = {sw.ln_group_order:.4f}; {t_sw * 1e3:.1f} ms)")

    # The same posterior through the command: `mi-est run` on the saved file.
    binary = os.environ.get("MI_EST_BIN", str(ROOT / "target" / "release" / "mi-est"))
    if not Path(binary).exists():
        print(f"(the mi-est command is not at {binary}; build it with `cargo build --release` to compare)")
        return
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "example.safetensors"
        q.save(path)
        settings = ["--estimators", "infonce,sandwich", "--k", str(args.k), "--samples", str(args.samples),
                    "--repeats", "1", "--seed", str(args.seed)]
        started = time.perf_counter()
        rows = cli_rows(binary, path, settings)
        t_cli = time.perf_counter() - started
        ours = mi_est.grid(str(path), estimators=["infonce", "sandwich"], k=[args.k], samples=args.samples,
                           repeats=1, seed=args.seed, output="records")
    bits = lambda h: np.frombuffer(bytes.fromhex(h)[::-1], dtype="<f8")[0]
    for cli, py in zip(rows, ours):
        same = bits(cli["mi_nats"]) == py["mi_nats"] and (cli["upper_nats"] is None or bits(cli["upper_nats"]) == py["upper_nats"])
        again = mi_est.estimate(q, cli["estimator"], k=cli["k"], samples=args.samples, seed=cli["seed"])
        same = same and again.value == py["mi_nats"]
        print(f"mi-est run {cli['estimator']:>8} K={cli['k']}: {bits(cli['mi_nats']):.10f} nats; "
              f"mi_est.grid and mi_est.estimate(seed={cli['seed']}): {py['mi_nats']:.10f}  {'equal' if same else 'DIFFERENT'}")
        if not same:
            sys.exit(1)
    print(f"(the command took {t_cli:.2f} s for both shards, start-up and file writing included)")


if __name__ == "__main__":
    main()
