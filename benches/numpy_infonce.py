"""The paper's I^K estimator in NumPy, the generic way: the comparison for
`cargo bench --bench estimators` (group `infonce`).

For a 784-30-10 mean-field posterior (mu ~ N(0, 0.1^2), sigma = softplus(-3)), S weight
draws and K - 1 fresh uniform hidden-unit permutations per draw:

    I^K = mean_s [ ln q(w_s) - logsumexp_j ln q(g_j^-1 . w_s) + ln K ]   (j = 0: identity)

Each permuted density is a gather of the flat weights through the permutation's index
map and a vectorized Gaussian log density, batched over permutations (the fastest
generic formulation we know in NumPy; no per-unit cost-matrix shortcut). Throughput is
reported in the unit of the Rust bench: draws x contrast terms x parameters per second.

With --cnn-digits, the same estimate for the bayesian-torch CNN of
data/specs/cnn-digits.safetensors (conv 1->8 -> conv 8->16 -> linear 256->10) under its
permutation spec: each permutation's index map permutes an arange of each tensor along
its permuted axes (channels, and the flatten's blocks of 16 positions), the way one would
write it in NumPy (the comparison for the bench group `spec`).

Usage: python3 benches/numpy_infonce.py [--k 256 4096] [--samples 2] [--batch 64] [--repeats 3] [--cnn-digits]
Run with OPENBLAS_NUM_THREADS=1 (and the machine's OPENBLAS_CORETYPE unset) for one thread.
"""

import argparse
import platform
import statistics
import time

import numpy as np


def flat_index_map(perm, d0=784, d1=30, d2=10):
    """idx with (g^-1 . w)[p] = w[idx[p]] for the hidden-unit permutation perm."""
    w1 = (perm[:, None] * d0 + np.arange(d0)[None, :]).ravel()
    b1 = d1 * d0 + perm
    off2 = d1 * d0 + d1
    w2 = (off2 + np.arange(d2)[:, None] * d1 + perm[None, :]).ravel()
    b2 = off2 + d2 * d1 + np.arange(d2)
    return np.concatenate([w1, b1, w2, b2])


def info_nce(mu, inv_sigma, ln_norm, k, samples, batch, rng):
    d1 = 30
    p = mu.size
    terms = []
    for _ in range(samples):
        w = mu + rng.standard_normal(p) / inv_sigma
        lq = [ln_norm - 0.5 * np.sum(((w - mu) * inv_sigma) ** 2)]
        for start in range(0, k - 1, batch):
            n = min(batch, k - 1 - start)
            idx = np.stack([flat_index_map(rng.permutation(d1)) for _ in range(n)])
            z = (w[idx] - mu) * inv_sigma
            lq.extend(ln_norm - 0.5 * np.einsum("bp,bp->b", z, z))
        lq = np.asarray(lq)
        m = lq.max()
        terms.append(lq[0] - (m + np.log(np.exp(lq - m).sum())) + np.log(k))
    return float(np.mean(terms))


def cnn_digits():
    """(mu, inv_sigma, ln_norm, index_map) of the digits CNN, tensors in the spec's order."""
    import os
    from safetensors.numpy import load_file

    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "specs")
    t = load_file(os.path.join(here, "cnn-digits.safetensors"))
    names = ["conv1.kernel", "conv1.bias", "conv2.kernel", "conv2.bias", "fc1.weight", "fc1.bias"]
    part = lambda n: n.rsplit(".", 1)
    mus = [t[f"{part(n)[0]}.mu_{part(n)[1]}"] for n in names]
    rhos = [t[f"{part(n)[0]}.rho_{part(n)[1]}"] for n in names]
    mu = np.concatenate([m.ravel() for m in mus]).astype(np.float64)
    sigma = np.log1p(np.exp(np.concatenate([r.ravel() for r in rhos]).astype(np.float64)))
    offsets = np.cumsum([0] + [m.size for m in mus])
    ar = [np.arange(m.size).reshape(m.shape) + o for m, o in zip(mus, offsets)]

    def index_map(rng):
        c1, c2 = rng.permutation(8), rng.permutation(16)
        # (g^-1 . w)[p] = w[idx[p]]: each tensor's arange permuted along its axes.
        k1 = ar[0][c1]
        b1 = ar[1][c1]
        k2 = ar[2][c2][:, c1]
        b2 = ar[3][c2]
        w3 = ar[4].reshape(10, 16, 16)[:, c2].reshape(10, 256)
        return np.concatenate([k1.ravel(), b1, k2.ravel(), b2, w3.ravel(), ar[5]])

    inv_sigma = 1.0 / sigma
    ln_norm = -np.log(sigma).sum() - 0.5 * mu.size * np.log(2 * np.pi)
    return mu, inv_sigma, ln_norm, index_map


def info_nce_maps(mu, inv_sigma, ln_norm, index_map, k, samples, batch, rng):
    p = mu.size
    terms = []
    for _ in range(samples):
        w = mu + rng.standard_normal(p) / inv_sigma
        lq = [ln_norm - 0.5 * np.sum(((w - mu) * inv_sigma) ** 2)]
        for start in range(0, k - 1, batch):
            n = min(batch, k - 1 - start)
            idx = np.stack([index_map(rng) for _ in range(n)])
            z = (w[idx] - mu) * inv_sigma
            lq.extend(ln_norm - 0.5 * np.einsum("bp,bp->b", z, z))
        lq = np.asarray(lq)
        m = lq.max()
        terms.append(lq[0] - (m + np.log(np.exp(lq - m).sum())) + np.log(k))
    return float(np.mean(terms))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[256, 4096])
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cnn-digits", action="store_true")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    if args.cnn_digits:
        mu, inv_sigma, ln_norm, index_map = cnn_digits()
        p = mu.size
        print(f"# numpy {np.__version__}; digits CNN under its spec, P = {p}, S = {args.samples}")
        for k in args.k:
            times = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                value = info_nce_maps(mu, inv_sigma, ln_norm, index_map, k, args.samples, args.batch, rng)
                times.append(time.perf_counter() - started)
            t = statistics.median(times)
            rate = args.samples * k * p / t
            print(f"K = {k}: median {t:.3f} s per estimate, {rate:.3e} terms/s (I^K = {value:.4f})")
        return
    p = 784 * 30 + 30 + 30 * 10 + 10
    mu = 0.1 * rng.standard_normal(p)
    sigma = np.log1p(np.exp(np.full(p, -3.0)))
    inv_sigma = 1.0 / sigma
    ln_norm = -np.log(sigma).sum() - 0.5 * p * np.log(2 * np.pi)
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    print(f"# numpy {np.__version__}, CPU: {cpu}; 784-30-10, P = {p}, S = {args.samples}")
    for k in args.k:
        times = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            value = info_nce(mu, inv_sigma, ln_norm, k, args.samples, args.batch, rng)
            times.append(time.perf_counter() - started)
        t = statistics.median(times)
        rate = args.samples * k * p / t
        print(f"K = {k}: median {t:.3f} s per estimate, {rate:.3e} terms/s (I^K = {value:.4f})")


if __name__ == "__main__":
    main()
