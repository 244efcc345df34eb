"""Writes the permutation-spec examples (docs/specs.md) with bayesian-torch: posteriors
of a small CNN, of a two-convolution CNN on 8x8 digits and of a residual MLP, saved
from each model's state_dict in bayesian-torch's own tensor names (`conv1.mu_kernel`,
`fc1.rho_weight`, ...). Run from the repository root:

    python3 data/specs/make_spec_posteriors.py

Needs torch and bayesian-torch; the 8x8 digits are scikit-learn's bundled copy of the
UCI optical digits (no download). The specs beside the posteriors are written by
`mi-est spec --sequential` (the CNNs) and by hand (the residual MLP).
"""
import os

import numpy as np
import torch
from bayesian_torch.layers import Conv2dReparameterization, LinearReparameterization
from safetensors.torch import save_file

OUT = os.path.dirname(os.path.abspath(__file__))


def save(net, name):
    # Only the variational parameters (bayesian-torch also keeps prior and noise buffers).
    tensors = {n: p.detach().double().contiguous() for n, p in net.named_parameters()}
    save_file(tensors, os.path.join(OUT, name + ".safetensors"))
    print("wrote", name, sum(t.numel() for t in tensors.values()) // 2, "parameters")


def train(net, x, y, steps, lr=1e-2):
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    for _ in range(steps):
        out, kl = net(x)
        loss = torch.nn.functional.cross_entropy(out, y) + kl / len(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return loss.item()


class SmallCnn(torch.nn.Module):
    """conv(1->3, 2x2 on 3x3) -> ReLU -> flatten (3 x 4) -> linear(12->4) -> ReLU -> linear(4->2)."""

    def __init__(self, rho):
        super().__init__()
        self.conv1 = Conv2dReparameterization(1, 3, 2, posterior_rho_init=rho)
        self.fc1 = LinearReparameterization(12, 4, posterior_rho_init=rho)
        self.fc2 = LinearReparameterization(4, 2, posterior_rho_init=rho)

    def forward(self, x):
        h, k1 = self.conv1(x)
        h, k2 = self.fc1(torch.relu(h).flatten(1))
        o, k3 = self.fc2(torch.relu(h))
        return o, k1 + k2 + k3


class DigitsCnn(torch.nn.Module):
    """conv(1->8, 3x3) -> ReLU -> conv(8->16, 3x3) -> ReLU -> flatten (16 x 4 x 4) -> linear(256->10) on 8x8 digits."""

    def __init__(self):
        super().__init__()
        self.conv1 = Conv2dReparameterization(1, 8, 3)
        self.conv2 = Conv2dReparameterization(8, 16, 3)
        self.fc1 = LinearReparameterization(256, 10)

    def forward(self, x):
        h, k1 = self.conv1(x)
        h, k2 = self.conv2(torch.relu(h))
        o, k3 = self.fc1(torch.relu(h).flatten(1))
        return o, k1 + k2 + k3


class ResidualMlp(torch.nn.Module):
    """x (3) -> r = ReLU(fc_in x) (4) -> r + block.fc2(ReLU(block.fc1 r)) (hidden 4) -> fc_out (2)."""

    def __init__(self, rho):
        super().__init__()
        self.fc_in = LinearReparameterization(3, 4, posterior_rho_init=rho)
        self.block = torch.nn.Module()
        self.block.fc1 = LinearReparameterization(4, 4, posterior_rho_init=rho)
        self.block.fc2 = LinearReparameterization(4, 4, posterior_rho_init=rho)
        self.fc_out = LinearReparameterization(4, 2, posterior_rho_init=rho)

    def forward(self, x):
        r, k1 = self.fc_in(x)
        r = torch.relu(r)
        h, k2 = self.block.fc1(r)
        d, k3 = self.block.fc2(torch.relu(h))
        o, k4 = self.fc_out(r + d)
        return o, k1 + k2 + k3 + k4


if __name__ == "__main__":
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # Small CNN and residual MLP: a toy task, and a broad initial posterior (rho = 0,
    # sigma = 0.69 against means of scale 0.1) so that the units overlap.
    x = torch.from_numpy(rng.normal(size=(64, 1, 3, 3)).astype(np.float32))
    y = (x[:, 0, 1, 1] > 0).long()
    net = SmallCnn(rho=0.0)
    print("small cnn loss", train(net, x, y, 20))
    save(net, "cnn-small")

    x = torch.from_numpy(rng.normal(size=(64, 3)).astype(np.float32))
    y = (x[:, 0] + x[:, 1] > 0).long()
    net = ResidualMlp(rho=-1.0)
    print("residual loss", train(net, x, y, 20))
    save(net, "residual-mlp")

    # The digits CNN: 300 Adam steps on the first 1500 digits, accuracy on the rest.
    from sklearn.datasets import load_digits

    d = load_digits()
    images = torch.from_numpy((d.images / 16.0).astype(np.float32)).unsqueeze(1)
    labels = torch.from_numpy(d.target).long()
    net = DigitsCnn()
    print("digits cnn loss", train(net, images[:1500], labels[:1500], 300))
    with torch.no_grad():
        acc = (net(images[1500:])[0].argmax(1) == labels[1500:]).float().mean().item()
    print(f"digits cnn held-out accuracy {acc:.3f} (one posterior draw)")
    save(net, "cnn-digits")
