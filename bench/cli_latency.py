"""How long the ``zoo`` command makes a user wait before it answers, as whole processes.

    python bench/cli_latency.py --runs 7

Runs each command ``--runs`` times (after one warm-up), interleaved round by round so that a
drift of the machine's speed touches every row alike, and prints the median and the range of
each one's wall time, beside ``python -c pass`` (the interpreter alone) and ``python -c "import
tensorflow"`` (what a command that needs TensorFlow pays first) from the same rounds. The
commands: the help of ``zoo`` and of each subcommand, ``zoo list`` and ``zoo list --presets``,
argument errors (a misspelt option, a bad choice, a bad number, an unknown ``--set`` option,
read from zoo/options.json) and file errors (a missing model file or preset, a missing dataset
path). Exit codes are checked: every error must fail with status 2.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ZOO = [sys.executable, "-m", "zoo"]
COMMANDS = [
    ("python -c pass", [sys.executable, "-c", "pass"], 0),
    ("python -c 'import tensorflow'", [sys.executable, "-c", "import tensorflow"], 0),
    ("zoo --help", [*ZOO, "--help"], 0),
    ("zoo list", [*ZOO, "list"], 0),
    ("zoo list --presets", [*ZOO, "list", "--presets"], 0),
    *[
        (f"zoo {c} --help", [*ZOO, c, "--help"], 0)
        for c in ("train", "transflow", "sample", "evaluate", "export")
    ],
    ("zoo train realnvp --epohcs 3 (typo)", [*ZOO, "train", "realnvp", "--epohcs", "3"], 2),
    ("zoo train realnvpp (no such model)", [*ZOO, "train", "realnvpp"], 2),
    ("zoo train realnvp --epochs ten", [*ZOO, "train", "realnvp", "--epochs", "ten"], 2),
    ("zoo train realnvp --dataset ./none", [*ZOO, "train", "realnvp", "--dataset", "./none"], 2),
    ("zoo sample missing.keras", [*ZOO, "sample", "missing.keras"], 2),
    ("zoo evaluate no_such_preset", [*ZOO, "evaluate", "no_such_preset"], 2),
    (
        "zoo train realnvp --set filterz=8 (after TF)",
        [*ZOO, "train", "realnvp", "--set", "filterz=8"],
        2,
    ),
]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    times = {name: [] for name, _, _ in COMMANDS}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.runs + 1):
            for name, command, status in COMMANDS:
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, cwd=folder, env=env)
                took = time.perf_counter() - start
                if done.returncode != status:
                    raise SystemExit(f"{name}: exit {done.returncode}: {done.stderr[-500:]!r}")
                if round_:  # the first round warms the file cache
                    times[name].append(took)
            print(f"round {round_}/{args.runs}", file=sys.stderr)
    base = statistics.median(times["python -c pass"])
    print(f"\n{'command':48s} {'median s':>9s} {'min-max s':>13s} {'minus python':>13s}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:48s} {median:9.3f} {min(values):6.3f}-{max(values):<6.3f} {median - base:13.3f}"
        )
    print(f"\nreproduce: python bench/cli_latency.py --runs {args.runs}")


if __name__ == "__main__":
    main()
