"""2-D densities whose true density is known: how close each vector flow gets.

    python bench/density_2d.py                      # 4 datasets x 4 flows, about 10 min
    python bench/density_2d.py --steps 500 --datasets moons   # a quick look

For each dataset a generator with a known density ``p`` draws 50,000 training points and
20,000 held-out ones. Each flow of `bench/_vector_flows.py` (affine coupling, spline coupling,
MAF, MAF with splines; 5 layers, MLP / MADE 64-64) trains for the same steps; the table gives
its held-out mean log-likelihood ``E_p[log q]`` next to the true density's own ``E_p[log p] =
-H(p)`` (both on the held-out points, with standard errors), and the gap ``E_p[log p - log q]
= KL(p || q) >= 0`` (estimated; the flow's distance from the truth, in nats). Writes
``density_2d.png``: each dataset's true density beside each flow's.

The datasets; ``p`` is the exact density of the points drawn (for the curves, the mixture over
the quadrature points, which is also what draws them; the column ``quadrature`` says how far
that mixture is from the continuous curves' density: ``E_p[log p]``'s change when the
quadrature has half the points):

* ``gaussians``: eight Gaussians, std 0.25, at radius 2 (a mixture: exact);
* ``checkerboard``: uniform on 8 unit squares in a 4 x 4 checkerboard on [-2, 2]^2 (FFJORD's;
  ``p = 1/8`` on its support, ``H = log 8``);
* ``moons``: two half circles (scikit-learn's ``make_moons`` geometry), the angle uniform,
  Gaussian noise of std 0.1: ``p(x) = 1/2 sum_moons (1/pi) int_0^pi N(x; c(t), 0.1^2 I) dt``,
  by the midpoint rule on 4,000 angles per moon;
* ``spirals``: two interleaved arms ``+-(t cos t, t sin t) / 3``, ``t ~ U[pi/2, 3 pi]``, noise
  std 0.1, the same quadrature on 8,000 values of ``t``.
"""

import argparse
import math
import os
import shlex
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
from _vector_flows import (
    add_options,
    build,
    gaussian_log_likelihood,
    mean_log_likelihood,
    train,
)
from scipy.special import logsumexp

LOG_2PI = math.log(2 * math.pi)


def _isotropic_log_density(x, centres, std):
    """``log (1/M) sum_m N(x; centres_m, std^2 I)`` for 2-D ``x`` ``[N, 2]``, in chunks."""
    out = np.empty(len(x))
    for i in range(0, len(x), 2000):
        d2 = ((x[i : i + 2000, None, :] - centres[None]) ** 2).sum(-1)
        log_n = -0.5 * d2 / std**2 - 2 * math.log(std) - LOG_2PI
        out[i : i + 2000] = logsumexp(log_n, axis=1) - math.log(len(centres))
    return out


class CurveMixture:
    """Points on curves (a uniform parameter) plus isotropic Gaussian noise; ``centres`` is the
    quadrature of the curves (midpoints of a uniform grid of the parameter, every curve equally
    likely)."""

    def __init__(self, centres, std):
        self.centres, self.std = centres, std

    def sample(self, n, rng):
        return self.centres[rng.integers(len(self.centres), size=n)] + self.std * rng.normal(
            size=(n, 2)
        )

    def log_prob(self, x):
        return _isotropic_log_density(x, self.centres, self.std)


def _midpoints(low, high, n):
    return low + (np.arange(n) + 0.5) * (high - low) / n


def gaussians():
    angles = 2 * math.pi * np.arange(8) / 8
    return CurveMixture(2.0 * np.stack([np.cos(angles), np.sin(angles)], 1), 0.25)


def moons(points=4000):
    t = _midpoints(0.0, math.pi, points)
    upper = np.stack([np.cos(t), np.sin(t)], 1)
    lower = np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1)
    return CurveMixture(np.concatenate([upper, lower]) - [0.5, 0.25], 0.1)


def spirals(points=8000):
    t = _midpoints(math.pi / 2, 3 * math.pi, points)
    arm = np.stack([t * np.cos(t), t * np.sin(t)], 1) / 3
    return CurveMixture(np.concatenate([arm, -arm]), 0.1)


class Checkerboard:
    def sample(self, n, rng):
        x1 = rng.uniform(-2, 2, n)
        x2 = rng.uniform(0, 1, n) - 2 * rng.integers(0, 2, n) + np.floor(x1) % 2
        return np.stack([x1, x2], 1)

    def log_prob(self, x):
        inside = (np.abs(x) <= 2).all(1) & ((np.floor(x[:, 0]) + np.floor(x[:, 1])) % 2 == 0)
        return np.where(inside, -math.log(8), -np.inf)


DATASETS = {
    "gaussians": gaussians,
    "checkerboard": Checkerboard,
    "moons": moons,
    "spirals": spirals,
}


def density_figure(rows, path, extent):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    columns = ["true", *rows[names[0]]["grids"]]
    fig, axes = plt.subplots(
        len(names), len(columns), figsize=(2.2 * len(columns), 2.2 * len(names))
    )
    axes = np.atleast_2d(axes)
    for r, name in enumerate(names):
        grids = {"true": rows[name]["true_grid"], **rows[name]["grids"]}
        for c, column in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(np.exp(grids[column]), origin="lower", extent=(-extent, extent) * 2)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(column, fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_options(parser, DATASETS, steps=4000, batch_size=512, learning_rate=2e-3)
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--test-size", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="folder for density_2d.png")
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="bench-density-2d-")
    os.makedirs(out, exist_ok=True)

    extent, size = 3.2, 120
    axis = np.linspace(-extent, extent, size)
    grid = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2)
    rows = {}
    for name in args.datasets:
        density = DATASETS[name]()
        rng = np.random.default_rng(args.seed)
        train_x = density.sample(args.train_size, rng)
        test_x = density.sample(args.test_size, rng)
        truth = density.log_prob(test_x)
        quadrature = 0.0
        if name in ("moons", "spirals"):
            coarse = DATASETS[name](points={"moons": 2000, "spirals": 4000}[name])
            quadrature = abs(coarse.log_prob(test_x).mean() - truth.mean())
        row = {
            "true": (truth.mean(), truth.std() / math.sqrt(len(truth))),
            "quadrature": quadrature,
            "gaussian": gaussian_log_likelihood(train_x, test_x),
            "true_grid": density.log_prob(grid).reshape(size, size),
            "flows": {},
            "grids": {},
        }
        for kind in args.kinds:
            keras.utils.set_random_seed(args.seed)
            flow = build(kind, 2)
            seconds = train(
                flow,
                train_x,
                steps=args.steps,
                batch_size=args.batch_size,
                learning_rate=args.learning_rate,
                seed=args.seed,
            )
            row["flows"][kind] = (*mean_log_likelihood(flow, test_x), seconds, flow.count_params())
            row["grids"][kind] = flow.log_prob(grid.astype(np.float32)).numpy().reshape(size, size)
            print(f"{name} {kind}: {row['flows'][kind][0]:.4f} nats ({seconds:.0f} s)", flush=True)
        rows[name] = row

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\n{command}")
    print(
        f"{args.train_size:,} training and {args.test_size:,} held-out points per dataset; "
        f"{args.steps:,} steps of {args.batch_size}; held-out mean log-likelihood (nats) +- "
        "standard error, KL(p || q) = E_p[log p] - E_p[log q]"
    )
    print(
        f"{'dataset':>12} {'true -H(p)':>16} {'quadrature':>10} {'Gaussian':>9} "
        + " ".join(f"{k:>24}" for k in args.kinds)
    )
    for name, row in rows.items():
        true_mean, true_se = row["true"]
        cells = [
            f"{mean:8.4f} +- {se:.4f} KL {true_mean - mean:.3f}"
            for mean, se, _, _ in row["flows"].values()
        ]
        print(
            f"{name:>12} {true_mean:8.4f} +- {true_se:.4f} {row['quadrature']:10.1e} "
            f"{row['gaussian']:9.4f} " + " ".join(f"{c:>24}" for c in cells)
        )
    first = next(iter(rows.values()))["flows"]
    print(
        "weights: "
        + ", ".join(f"{k} {v[3]:,}" for k, v in first.items())
        + "; training seconds per flow: "
        + ", ".join(
            f"{k} {np.mean([r['flows'][k][2] for r in rows.values()]):.0f}" for k in args.kinds
        )
    )
    path = os.path.join(out, "density_2d.png")
    density_figure(rows, path, extent)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
