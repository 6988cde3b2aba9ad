"""The MNIST protocols of the benchmarks: which images train and which are held out.

``standard`` (the default) is the protocol every paper and peer reports: train on the 60,000
training images, report on the 10,000 test images. ``test9k`` is the one the zoo's earlier rows
used while only the test set was at hand: train on test images 0-8,999, hold out 9,000-9,999; it
keeps those rows reproducible.
"""

PROTOCOLS = {
    "standard": ("train", "test"),
    "test9k": ("test[:9000]", "test[9000:]"),
}


def add_protocol(parser):
    """``--protocol`` on a benchmark's command line."""
    parser.add_argument(
        "--protocol",
        choices=list(PROTOCOLS),
        default="standard",
        help="standard: train on the 60,000 training images, report on the 10,000 test images; "
        "test9k: the earlier rows' test[:9000] / test[9000:]",
    )


def splits(args):
    """``(training split, held-out split)`` of the parsed ``args``' protocol."""
    return PROTOCOLS[args.protocol]


def first(split, count):
    """The first ``count`` images of ``split`` (one that starts at its set's first image)."""
    return f"{split.partition('[')[0]}[:{count}]"
