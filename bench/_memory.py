"""Peak resident memory (RSS) of this process, for the benchmarks' tables.

Linux keeps the peak as ``VmHWM`` in /proc/self/status, and writing 5 to /proc/self/clear_refs
resets it to the current RSS, so a benchmark that runs several models in one process can report
each model's own peak. Elsewhere, the process peak from ``getrusage`` (never reset).
"""

import resource
import sys


def reset_peak():
    """Starts a new peak at the current RSS (Linux); elsewhere the peak stays the process's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_mib():
    """The peak RSS in MiB since the last `reset_peak` (Linux) or since the process started."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale / 1024
