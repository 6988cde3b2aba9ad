"""Transfer learning with few labels on real MNIST: frozen backbone, fine-tuned, from scratch.

    python bench/mnist_transfer.py --mnist ../shared/data/mnist

Pretrains a `zoo.ConvClassifier` on digits 0-4 of the 60,000 MNIST training images (`--protocol
test9k`: of the first 9,000 test images), then for 1, 10 and 50 labelled images per class of
digits 5-9 (drawn from the same training images, five draws each, seeds 0-4) trains, through
`zoo.training.run` as `zoo train` does:

* ``transfer``: the pretrained conv net frozen, a new head (phase ``frozen``), then every layer
  but batch norm fine-tuned at a 10x lower learning rate (phase ``fine_tuned``);
* ``scratch``: the same architecture from random weights on the same labelled images, for as
  many steps as both transfer phases together.

Accuracy is on digits 5-9 of the 10,000 test images (test9k: of the last 1,000). Prints mean
+- standard deviation over the draws per method and label count, writes transfer_accuracy.png
and results.json.
"""

import argparse
import json
import os
import shlex
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _memory import peak_rss_mib
from _protocol import add_protocol, splits

from zoo import data, training
from zoo.training import precision

SOURCE, TARGET = (0, 1, 2, 3, 4), (5, 6, 7, 8, 9)


def run(args, out, **fields):
    config = training.RunConfig(
        dataset=args.mnist,
        train_split=splits(args)[0],
        test_split=splits(args)[1],
        batch_size=args.batch_size,
        mixed_precision=args.precision,
        out=out,
        export=False,
        **fields,
    )
    return training.run(config)


def accuracy_plot(table, path):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for method, rows in table.items():
        counts = sorted(rows)
        means = [np.mean(rows[n]) for n in counts]
        spreads = [np.std(rows[n]) for n in counts]
        ax.errorbar(counts, means, yerr=spreads, marker="o", capsize=3, label=method)
    ax.set_xscale("log")
    ax.set_xlabel("labelled images per class (digits 5-9)")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("MNIST 0-4 -> 5-9 transfer (mean +- sd over draws)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default="../shared/data/mnist", help="MNIST idx folder")
    add_protocol(parser)
    parser.add_argument("--labels", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--draws", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=10, help="per phase; 10 steps each")
    parser.add_argument("--pretrain-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--precision", default="off", choices=precision.MODES)
    parser.add_argument("--out", default=None, help="folder for the PNG and results.json")
    args = parser.parse_args(argv)
    scratch = tempfile.mkdtemp(prefix="bench-transfer-")
    out = args.out or scratch
    os.makedirs(out, exist_ok=True)

    source = run(
        args,
        os.path.join(scratch, "source"),
        model="classifier",
        classes=SOURCE,
        epochs=args.pretrain_epochs,
    )
    backbone = os.path.join(scratch, "source", "model.keras")
    table = {"frozen": {}, "fine_tuned": {}, "scratch": {}}
    for n in args.labels:
        for seed in range(args.draws):
            common = dict(classes=TARGET, labels_per_class=n, steps_per_epoch=10, seed=seed)
            transfer = run(
                args,
                os.path.join(scratch, f"transfer-{n}-{seed}"),
                model="transfer",
                epochs=args.epochs,
                options={"backbone": backbone},
                **common,
            )
            baseline = run(
                args,
                os.path.join(scratch, f"scratch-{n}-{seed}"),
                model="classifier",
                epochs=2 * args.epochs,
                **common,
            )
            for phase in ("frozen", "fine_tuned"):
                accuracy = transfer["phases"][phase]["held_out_accuracy"]
                table[phase].setdefault(n, []).append(accuracy)
            table["scratch"].setdefault(n, []).append(baseline["held_out_accuracy"])

    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv or sys.argv[1:])])
    print(f"\n{command}")
    _, held_out = data.load(args.mnist, splits(args)[1], with_labels=True, classes=TARGET)
    print(
        f"pretrained on digits 0-4 ({source['train_examples']} images): held-out accuracy "
        f"{source['held_out_accuracy']:.4f}; accuracy below on {held_out.num_examples} held-out "
        "images of 5-9"
    )
    print(f"{'labels/class':>12}  " + "  ".join(f"{m:>17}" for m in table))
    for n in args.labels:
        cells = [f"{np.mean(table[m][n]):.4f} +- {np.std(table[m][n]):.4f}" for m in table]
        print(f"{n:>12}  " + "  ".join(f"{c:>17}" for c in cells))
    accuracy_plot(table, os.path.join(out, "transfer_accuracy.png"))
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"command": command, "source": source["held_out"], "accuracy": table}, f)
    print(f"wrote transfer_accuracy.png and results.json in {out}")
    print(f"peak RSS {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
