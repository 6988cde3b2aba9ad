"""`Preemption`: SIGTERM and SIGINT stop a training run at a step it can resume from.

Kubernetes, spot machines and batch schedulers send SIGTERM and allow a grace period before
SIGKILL; a user presses Ctrl-C (SIGINT). Either used to kill the run at once and lose the epoch
in progress (one epoch of Glow on MNIST takes 10 to 25 minutes on a 2-core CPU). Under
`Preemption` a signal during ``fit`` is only recorded: the checkpoint callback
(`zoo.training.callbacks.AtomicCheckpoint`) sees it after the step in progress, writes a
resumable checkpoint of that step and raises `Interrupted`, which the command line prints as one
line. Outside ``fit`` (loading data, building, writing results) there is no step to keep, and
`Interrupted` is raised at once. A second signal while the first is pending does not wait.

Only the main thread can handle signals: a run started elsewhere keeps the process' handlers.
"""

import signal
import threading


class Interrupted(Exception):
    """The run stopped on a signal; ``signum`` is its number (the command exits 128 + it)."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = signum


def signal_name(signum):
    return signal.Signals(signum).name


class Preemption:
    """``with Preemption() as p:`` handles SIGTERM and SIGINT for the body; ``p.armed`` (set
    while a ``fit`` runs) defers them to ``p.pending``, the signal's number (None: none)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.armed = False
        self.pending = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame):
        if self.armed and self.pending is None:
            self.pending = signum
            print(f"\n{signal_name(signum)}: stopping after this step, at a resumable checkpoint")
            return
        raise Interrupted(
            f"interrupted by {signal_name(signum)}; run the same command again to resume from "
            "the last checkpoint",
            signum,
        )
