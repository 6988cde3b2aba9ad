"""GANs (DCGAN, PacDCGAN, WGAN-GP), autoencoders and the VAE on real MNIST, fixed CPU budgets.

    python bench/mnist_generative.py --mnist ../shared/data/mnist --budget-minutes 3

Trains each model through `zoo.training.run` (as `zoo train` does) on the 60,000 MNIST training
images and holds out the 10,000 test images (`--protocol test9k`: the earlier rows' first 9,000
test images, holding out the last 1,000). Prints one table per family:

* GAN: classifier-Frechet distance and mode coverage (classes covered, KL to the held-out class
  histogram) of 10,000 samples against the held-out images, in the feature space of the judge
  the run trained; the floor is the same figures for as many training images as there are
  held-out ones (what a perfect generator would score against that reference set).
* Stacked MNIST (1,000 modes): three random training digits stacked as the channels of one
  28x28x3 image; each GAN trains on --stacked-size of them (default 60,000); 26,000 samples
  are classified channel by channel by a judge of single digits; modes covered (of 1,000) and
  KL to uniform, against the same figures for 26,000 real stacked images. The judge
  (--judge) is the shipped ``classifier_mnist`` preset (0.990 test accuracy), fixed for every
  run as PacGAN's pretrained classifier is; ``--judge train`` trains a `FeatureClassifier`
  for 600 steps per run instead (0.971-0.981): its random start alone moved one DCGAN's KL
  from 0.232 to 0.323 between two such judges, so its figures are not comparable across runs.
  (PacGAN's paper, on its setting: DCGAN 99 modes, KL 3.40; PacDCGAN 1,000 modes, KL 0.06.)
* Autoencoders: held-out MSE and PSNR per bottleneck size.
* VAE: held-out ELBO (nats) and bits/dim, and the importance-weighted bound in bits/dim of the
  discrete data (k samples), next to the flows' bits/dim (bench/mnist_flows.py).

The GANs are --gans, registry names with options: ``dcgan`` (the default three: ``dcgan``,
``dcgan:pack=2``, ``wgan_gp``). Each row also gives the train-step throughput in float32 and,
with --precisions, in mixed_bfloat16 (a short run at the same batch size).
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import tensorflow as tf
from _memory import peak_rss_mib, reset_peak
from _protocol import add_protocol, first, splits

from zoo import data, training
from zoo.models.gan import metrics as gan_metrics


def train(model, args, out, options, budget_minutes, mode="off", batch_size=64):
    return training.run(
        training.RunConfig(
            model=model,
            dataset=args.mnist,
            train_split=splits(args)[0],
            test_split=splits(args)[1],
            batch_size=batch_size,
            epochs=10_000,
            mixed_precision=mode,
            time_budget=60 * budget_minutes,
            seed=args.seed,
            options=options,
            out=out,
            export=False,
        )
    )


def throughput(model, args, out, options, batch_size=64):
    """Steady train-step images/s under each precision, from short runs."""
    figures = {}
    for mode in args.precisions:
        run = train(model, args, f"{out}-{mode}", options, args.speed_minutes, mode, batch_size)
        figures[mode] = run["train_examples_per_second"]
    return figures


def load_images(args, split, scaling="unit"):
    ds, _ = data.load(args.mnist, split, scaling=scaling, with_labels=True, batch_size=1000)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def draw(model, count, seed, chunk=1000):
    """``count`` samples, ``chunk`` at a time: the DCGAN's ``sample(10000)`` in one call
    peaked at 6.3 GiB of activations (1.3 GiB for 1,000)."""
    return np.concatenate(
        [
            model.sample(min(chunk, count - start), seed=[seed, start // chunk]).numpy()
            for start in range(0, count, chunk)
        ]
    )


def gan_variant(spec):
    """``"name:k=v,k=v"`` -> ``(name, {k: v})``, values read as ``zoo train --set`` reads them."""
    from zoo.cli import parse_set

    name, _, rest = spec.partition(":")
    return name, parse_set([item for item in rest.split(",") if item], name)


def gan_rows(args, scratch):
    import keras

    held_out, _ = load_images(args, splits(args)[1])
    floor_images, _ = load_images(args, first(splits(args)[0], len(held_out)))
    rows = []
    for spec in args.gans:
        name, options = gan_variant(spec)
        out = os.path.join(scratch, "gan-" + spec.replace(":", "-").replace(",", "-"))
        metrics = train(name, args, out, options, args.budget_minutes)
        model = keras.saving.load_model(os.path.join(out, "model.keras"))
        samples = draw(model, args.num_samples, args.seed)
        figures = gan_metrics.sample_figures(model.judge, samples, held_out)
        floor = gan_metrics.sample_figures(model.judge, floor_images, held_out)
        rows.append(
            {
                "model": spec,
                "weights": metrics["weights"],
                "epochs": metrics["epochs_run"],
                "judge_accuracy": metrics.get("held_out_judge_accuracy"),
                **figures,
                "floor": floor,
                "speed": throughput(name, args, out + "-speed", options),
            }
        )
    print(f"\nGAN: {args.num_samples} samples vs the {len(held_out):,} held-out images")
    print(
        f"{'model':20s} {'weights':>10s} {'epochs':>6s} {'judge acc':>9s} {'cFD':>9s} "
        f"{'classes':>7s} {'KL':>7s} {'floor cFD':>9s} {'floor KL':>8s}  img/s"
    )
    for r in rows:
        print(
            f"{r['model']:20s} {r['weights']:10,d} {r['epochs']:6d} {r['judge_accuracy']:9.4f} "
            f"{r['frechet_distance']:9.3f} {r['classes_covered']:7.0f} {r['class_kl']:7.4f} "
            f"{r['floor']['frechet_distance']:9.3f} {r['floor']['class_kl']:8.4f}  {r['speed']}"
        )
    return rows


def stack(images, labels, count, rng):
    """``count`` images whose 3 channels are random digits of ``images``; class
    ``k_0 + 10 k_1 + 100 k_2``."""
    index = rng.integers(0, len(images), size=(count, 3))
    stacked = np.concatenate([images[index[:, c]] for c in range(3)], axis=-1)
    classes = sum(labels[index[:, c]] * 10**c for c in range(3))
    return stacked, classes


class PresetJudge:
    """A zoo classifier preset as a judge: class ids from ``classify``, its logits as the
    features (the stacked rows report modes and KL, not the Frechet distance)."""

    def __init__(self, name):
        import zoo

        self.model = zoo.from_preset(name)
        self.num_classes = self.feature_dim = self.model.num_classes

    def features(self, images):
        return self.model(images)

    def predict_classes(self, images):
        return self.model.classify(images)["class_ids"]


def digit_judge(args):
    """The judge of single digits: a preset (``--judge NAME``) or one trained here."""
    if args.judge != "train":
        return PresetJudge(args.judge)
    from zoo.models.gan.judge import FeatureClassifier

    ds, _ = data.load(
        args.mnist,
        splits(args)[0],
        scaling="unit",
        with_labels=True,
        batch_size=64,
        shuffle=True,
        seed=args.seed,
    )
    judge = FeatureClassifier((28, 28, 1), 10)
    judge.fit_labelled(ds.repeat(), steps=600)
    return judge


def stacked_rows(args, scratch):
    import keras

    from zoo.models.gan.judge import ChannelwiseClassifier

    rng = np.random.default_rng(args.seed)
    train_x, train_y = load_images(args, splits(args)[0])
    held_x, held_y = load_images(args, splits(args)[1])
    as_uint8 = lambda x: np.round(x * 255).astype(np.uint8)  # noqa: E731
    x_train, _ = stack(as_uint8(train_x), train_y, args.stacked_size, rng)
    x_test, _ = stack(as_uint8(held_x), held_y, 2600, rng)
    path = os.path.join(scratch, "stacked_mnist.npz")
    np.savez(path, x_train=x_train, x_test=x_test)  # no labels: the runs train no judge

    judge = digit_judge(args)
    accuracy = float(np.mean(judge.predict_classes(held_x).numpy() == held_y))
    stacked_judge = ChannelwiseClassifier(judge, 3)
    uniform = np.full(1000, 1.0)
    real, _ = stack(train_x, train_y, args.stacked_samples, rng)
    floor = gan_metrics.sample_figures(stacked_judge, real, real[:1000], uniform)

    rows = []
    for spec in args.gans:
        name, options = gan_variant(spec)
        out = os.path.join(scratch, "stacked-" + spec.replace(":", "-").replace(",", "-"))
        config = training.RunConfig(
            model=name,
            dataset=path,
            batch_size=64,
            epochs=10_000,
            time_budget=60 * args.budget_minutes,
            seed=args.seed,
            options=options,
            out=out,
            export=False,
        )
        metrics = training.run(config)
        model = keras.saving.load_model(os.path.join(out, "model.keras"))
        samples = draw(model, args.stacked_samples, args.seed)
        figures = gan_metrics.sample_figures(stacked_judge, samples, real[:1000], uniform)
        rows.append({"model": spec, "epochs": metrics["epochs_run"], **figures})
    print(
        f"\nStacked MNIST: {args.stacked_samples} samples, 1,000 modes; "
        f"judge held-out accuracy per digit {accuracy:.4f}"
    )
    print(f"{'model':20s} {'epochs':>6s} {'modes':>6s} {'KL to uniform':>13s}")
    for r in [*rows, {"model": "real (floor)", "epochs": 0, **floor}]:
        print(
            f"{r['model']:20s} {r['epochs']:6d} {r['classes_covered']:6.0f} {r['class_kl']:13.4f}"
        )
    return rows


def autoencoder_rows(args, scratch):
    rows = []
    for latent in args.bottlenecks:
        out = os.path.join(scratch, f"ae-{latent}")
        options = {"latent_dim": latent}
        metrics = train("conv_autoencoder", args, out, options, args.ae_minutes)
        rows.append(
            {
                "model": f"conv autoencoder, {latent} units",
                "weights": metrics["weights"],
                "epochs": metrics["epochs_run"],
                "mse": metrics["held_out"]["mse"],
                "psnr": metrics["held_out"]["psnr"],
                "speed": throughput("conv_autoencoder", args, out + "-speed", options)
                if latent == args.bottlenecks[-1]
                else {},
            }
        )
    print("\nAutoencoders: held-out reconstruction")
    print(f"{'model':30s} {'weights':>10s} {'epochs':>6s} {'MSE':>9s} {'PSNR dB':>8s}  img/s")
    for r in rows:
        print(
            f"{r['model']:30s} {r['weights']:10,d} {r['epochs']:6d} {r['mse']:9.5f} "
            f"{r['psnr']:8.2f}  {r['speed']}"
        )
    return rows


def vae_rows(args, scratch):
    import keras

    out = os.path.join(scratch, "vae")
    metrics = train("vae", args, out, {}, args.budget_minutes)
    model = keras.saving.load_model(os.path.join(out, "model.keras"))
    held_out, _ = load_images(args, splits(args)[1])
    iw = np.concatenate(
        [
            model.iw_bits_per_dim(tf.constant(held_out[i : i + 100]), args.iw_samples).numpy()
            for i in range(0, len(held_out), 100)
        ]
    )
    row = {
        "model": "vae",
        "weights": metrics["weights"],
        "epochs": metrics["epochs_run"],
        "elbo_nats": -metrics["held_out"]["loss"],
        "elbo_bits_per_dim": metrics["held_out"]["bits_per_dim"],
        "iw_bits_per_dim": float(iw.mean()),
        "speed": throughput("vae", args, out + "-speed", {}),
    }
    print(f"\nVAE: held-out bound on log p(x) of the discrete data (k = {args.iw_samples})")
    print(
        f"{'model':6s} {'weights':>10s} {'epochs':>6s} {'ELBO nats':>10s} {'ELBO b/d':>9s} "
        f"{'IW b/d':>8s}  img/s"
    )
    print(
        f"{row['model']:6s} {row['weights']:10,d} {row['epochs']:6d} {row['elbo_nats']:10.2f} "
        f"{row['elbo_bits_per_dim']:9.4f} {row['iw_bits_per_dim']:8.4f}  {row['speed']}"
    )
    return [row]


FAMILIES = {
    "gan": gan_rows,
    "stacked": stacked_rows,
    "autoencoder": autoencoder_rows,
    "vae": vae_rows,
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist", default=os.path.join("..", "shared", "data", "mnist"))
    add_protocol(parser)
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--budget-minutes", type=float, default=3.0, help="GAN and VAE runs")
    parser.add_argument("--ae-minutes", type=float, default=1.0, help="each autoencoder run")
    parser.add_argument("--speed-minutes", type=float, default=0.25, help="throughput runs")
    parser.add_argument("--precisions", nargs="+", default=["off", "bfloat16"])
    parser.add_argument(
        "--gans",
        nargs="+",
        default=["dcgan", "dcgan:pack=2", "wgan_gp"],
        help="registry names with options, e.g. dcgan:pack=2 wgan_gp:pack=2,d_steps=3",
    )
    parser.add_argument("--bottlenecks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--num-samples", type=int, default=10_000)
    parser.add_argument("--stacked-size", type=int, default=60_000, help="stacked train images")
    parser.add_argument("--stacked-samples", type=int, default=26_000)
    parser.add_argument(
        "--judge",
        default="classifier_mnist",
        help="Stacked MNIST's digit judge: a classifier preset, or 'train' (one per run)",
    )
    parser.add_argument("--iw-samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="keep every run's folder (samples) here")
    args = parser.parse_args(argv)

    results, peaks = {}, {}
    with tempfile.TemporaryDirectory() as temporary:
        scratch = args.out or temporary
        os.makedirs(scratch, exist_ok=True)
        for family in args.families:
            reset_peak()
            results[family] = FAMILIES[family](args, scratch)
            peaks[family] = peak_rss_mib()
    print("\npeak RSS MiB: " + ", ".join(f"{f} {m:.0f}" for f, m in peaks.items()))
    print(
        "\ncommand: python bench/mnist_generative.py "
        + " ".join(sys.argv[1:] if argv is None else argv)
    )
    print(f"TF {tf.__version__}, {os.cpu_count()} CPU cores")
    return results


if __name__ == "__main__":
    main()
