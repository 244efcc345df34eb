"""Writes regression.csv: a small synthetic regression set for the README's CSV example.
200 rows, 4 inputs x ~ U[-2, 2], target y = sin(x1) + 0.5 x2^2 - x3 x4 + noise (sd 0.1),
a header line, 6 decimals. Run from the repository root:
python3 data/examples/make_regression_csv.py
"""
import os

import numpy as np

rng = np.random.default_rng(0)
x = rng.uniform(-2.0, 2.0, size=(200, 4))
y = np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2 - x[:, 2] * x[:, 3] + rng.normal(0.0, 0.1, size=200)
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "regression.csv")
with open(path, "w") as f:
    f.write("x1,x2,x3,x4,y\n")
    for row, target in zip(x, y):
        f.write(",".join(f"{v:.6f}" for v in row) + f",{target:.6f}\n")
