"""Pictures people would rather look at than read (PNG): sample grids, reconstructions, loss
curves, confusion matrices, and a sample grid per epoch (`EpochSamples`).

Drawing only: nothing here knows a zoo model beyond ``model.sample``; every layer of the zoo
draws with it (the models their pictures, the training run its loss curve, ``zoo sample``).
"""

import math
import os

import matplotlib

matplotlib.use("Agg")
import keras
import matplotlib.pyplot as plt
import numpy as np


def sample_grid(images, path, title=None, columns=None):
    """Writes ``images`` ``[N, H, W, C]`` in ``[0, 1]`` as one PNG grid (``columns`` wide;
    default: square)."""
    images = np.clip(np.asarray(images), 0.0, 1.0)
    n, h, w, c = images.shape
    cols = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1, c), np.float32)
    for i, image in enumerate(images):
        r, q = divmod(i, cols)
        grid[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + q * (w + 1) : 1 + q * (w + 1) + w] = image
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[0] / grid.shape[1]))
    ax.imshow(grid[..., 0] if c == 1 else grid, cmap="gray" if c == 1 else None, vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def model_samples(model, out, seed=0, temperature=1.0, what="samples"):
    """Writes ``samples.png`` into the folder ``out``: 64 draws of ``model.sample`` at
    ``temperature`` from the stateless seed ``[seed, 0]``, titled with the model's name and
    ``what`` they are; returns the file name."""
    images = model.sample(64, temperature=temperature, seed=[seed, 0])
    title = f"{model.name} {what}, T = {temperature}"
    sample_grid(images, os.path.join(out, "samples.png"), title=title)
    return "samples.png"


def reconstruction_grid(originals, reconstructions, path, title=None, columns=8):
    """Writes a PNG of rows of ``originals`` each above the row of their ``reconstructions``
    (images ``[N, H, W, C]`` in ``[0, 1]``)."""
    originals = np.clip(np.asarray(originals, np.float32), 0.0, 1.0)
    reconstructions = np.clip(np.asarray(reconstructions, np.float32), 0.0, 1.0)
    n, h, w, c = originals.shape
    cols = min(columns, n)
    rows = -(-n // cols)
    pair = 2 * h + 1 + max(h // 2, 2)  # a wider gap between pairs of rows than within one
    mosaic = np.ones((rows * pair - max(h // 2, 2), cols * (w + 1) - 1, c), np.float32)
    for i in range(n):
        r, q = divmod(i, cols)
        top, left = r * pair, q * (w + 1)
        mosaic[top : top + h, left : left + w] = originals[i]
        mosaic[top + h + 1 : top + 2 * h + 1, left : left + w] = reconstructions[i]
    sample_grid(mosaic[None], path, title=title)


class EpochSamples(keras.callbacks.Callback):
    """Writes ``epoch_NNN.png`` into ``folder`` after every epoch: a grid of ``model.sample``
    drawn with the same stateless seed each time, so the pictures show one set of latents
    evolving."""

    def __init__(self, folder, num_samples=64, temperature=1.0, seed=(0, 0)):
        super().__init__()
        self.folder = folder
        self.num_samples = num_samples
        self.temperature = temperature
        self.seed = list(seed)

    def on_epoch_end(self, epoch, logs=None):
        os.makedirs(self.folder, exist_ok=True)
        images = self.model.sample(self.num_samples, temperature=self.temperature, seed=self.seed)
        path = os.path.join(self.folder, f"epoch_{epoch + 1:03d}.png")
        sample_grid(images, path, title=f"epoch {epoch + 1}")


# Counts and timings a run logs per epoch (`zoo.training.callbacks`), not curves to watch.
NOT_CURVES = ("skipped_steps", "steps", "seconds_per_step")


def loss_curve(history, path, phases=()):
    """Writes every per-epoch curve of a Keras ``History.history`` dict as a PNG.

    One panel per metric, the training value and its held-out ``val_`` twin together, whatever
    the model logs (``loss`` and ``bits_per_dim`` for a flow, ``d_loss`` / ``g_loss`` for a GAN).
    ``phases``: ``(name, first epoch)`` pairs of a recipe of several fits, marked by a line
    before each but the first.
    """
    metrics = sorted({k.removeprefix("val_") for k in history if history[k]} - set(NOT_CURVES))
    if not metrics:
        raise ValueError("loss_curve needs a history with at least one non-empty curve.")
    cols = min(len(metrics), 3)
    rows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.6 * rows), squeeze=False)
    for ax in axes.flat[len(metrics) :]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for key, label in ((metric, "train"), (f"val_{metric}", "held out")):
            if history.get(key):
                epochs = np.arange(1, len(history[key]) + 1)
                ax.plot(epochs, history[key], marker=".", label=label)
        for name, first in list(phases)[1:]:
            ax.axvline(first - 0.5, color="gray", linestyle="--", linewidth=1)
            ax.annotate(
                name,
                (first - 0.5, 1),
                xycoords=("data", "axes fraction"),
                xytext=(3, -12),
                textcoords="offset points",
                fontsize=8,
                color="gray",
            )
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(true, predicted, path, class_names, title=None):
    """Writes the confusion matrix of integer labels ``true`` vs ``predicted`` as a PNG: rows
    the true class, columns the predicted one, each cell its count, shaded by the row's share."""
    k = len(class_names)
    true, predicted = np.asarray(true, np.int64), np.asarray(predicted, np.int64)
    if true.shape != predicted.shape or true.size == 0:
        raise ValueError(
            f"confusion_matrix needs equal, non-empty labels: {true.shape}, {predicted.shape}."
        )
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (true, predicted), 1)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.6 + 0.55 * k))
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (r, c), n in np.ndenumerate(counts):
        if n:
            ax.text(
                c,
                r,
                str(n),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[r, c] > 0.5 else "black",
            )
    ax.set_xticks(range(k), class_names)
    ax.set_yticks(range(k), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return counts


def held_out_confusion(data, predict, path, class_names, who):
    """`confusion_matrix` of ``predict(images)`` (class ids) over ``data``'s ``(images,
    labels)`` batches, titled with ``who`` and the accuracy; returns the accuracy."""
    true, predicted = [], []
    for images, labels in data:
        true.append(np.asarray(labels))
        predicted.append(np.asarray(predict(images)))
    true, predicted = np.concatenate(true), np.concatenate(predicted)
    accuracy = float(np.mean(true == predicted))
    title = f"{who}: held-out accuracy {accuracy:.3f} ({len(true)} images)"
    confusion_matrix(true, predicted, path, class_names, title)
    return accuracy
