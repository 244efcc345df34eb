"""Time of mi_est.torch on a ResNet-20-sized posterior, on one thread, beside the model's
own forward and backward in PyTorch.

    RAYON_NUM_THREADS=1 python benches/torch_resnet20.py [--repeats 20]

The model is bayesian-torch's own `resnet20` (CIFAR-10 shapes, 268,346 variational
weights; its option-A shortcuts widen the stream by zero padding). Timed, each as the
median of `--repeats` runs after one warm-up: `from_module` (trace, labels, spec, the
float64 equivariance check, the posterior), `spec` without the check, one `mi_term`
forward and backward (I^K, K = 20, one weight draw) with BatchNorm statistics as
initialized (no unit pinned) and as after training (every channel pinned by its
statistics), and the model's own forward and backward on a batch of 32 and of 128 CIFAR
images. PyTorch and our library both run on one thread.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")

import torch  # noqa: E402
from bayesian_torch.models.bayesian.resnet_variational import resnet20  # noqa: E402

import mi_est.torch as mt  # noqa: E402
from pytorch_epoch import cpu_model  # noqa: E402 - the sibling comparison's CPU name


def median_time(f, repeats):
    f()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times), max(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = resnet20()
    x = torch.randn(2, 3, 32, 32)
    rows = []

    def report(what, t):
        med, lo, hi = t
        rows.append((what, med))
        print(f"{what:<58} {med * 1e3:9.1f} ms  (min {lo * 1e3:.1f}, max {hi * 1e3:.1f})")

    print(f"CPU: {cpu_model()}; torch {torch.__version__}, {torch.get_num_threads()} thread; "
          f"RAYON_NUM_THREADS={os.environ['RAYON_NUM_THREADS']}")
    q = mt.from_module(model, example_input=x)
    print(f"posterior: {q.n_params} variational weights, {len(q.permutation_sizes)} permutations, "
          f"ln|G| = {q.ln_group_order:.1f}")
    report("from_module (trace, spec, float64 check, posterior)", median_time(lambda: mt.from_module(model, example_input=x), args.repeats))
    report("derivation without the check", median_time(lambda: mt._derive(model, None, x), args.repeats))
    term = mt.MiTerm(model, k=20, samples=1, example_input=x)

    def step():
        model.zero_grad(set_to_none=True)
        term(seed=1).backward()

    report("mi_term forward+backward (K = 20; no unit pinned)", median_time(step, args.repeats))
    with torch.no_grad():
        g = torch.Generator().manual_seed(1)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(torch.randn(b.shape, generator=g))
    term(seed=1)  # rebuilds the posterior for the new statistics
    report("mi_term forward+backward (K = 20; every channel pinned)", median_time(step, args.repeats))
    model.train()
    for batch in (32, 128):
        images = torch.randn(batch, 3, 32, 32)

        def own():
            model.zero_grad(set_to_none=True)
            out, kl = model(images)
            (torch.nn.functional.cross_entropy(out, torch.zeros(batch, dtype=torch.long)) + kl / 50_000).backward()

        report(f"the model's own forward+backward, batch {batch} (PyTorch)", median_time(own, args.repeats))


if __name__ == "__main__":
    main()
