"""TensorFlow imported for the command line without its C++ start-up lines.

TensorFlow 2.21 writes lines such as ``oneDNN custom operations are on``, ``Could not find cuda
drivers`` and ``This TensorFlow binary is optimized to use ...`` to the process's stderr while
its libraries load, before Abseil's logging is initialized, so ``TF_CPP_MIN_LOG_LEVEL`` does
not hold them back (its shared objects load twice: once for ``tensorflow``, again for Keras /
TFP); finding the devices then logs ``failed call to cuInit`` as an error on any machine
without a GPU. `import_tensorflow` imports TensorFlow, Keras and TFP and lists the devices with
file descriptor 2 captured, and writes back every captured line but Abseil's log lines below the
level (``I``/``W``/``E``/``F`` = 0/1/2/3) and its notice that logs go to stderr: Python's own
warnings, tracebacks and fatal lines stay. The level is ``TF_CPP_MIN_LOG_LEVEL`` where the
environment sets it, else 3 for these start-up lines and 2 for the run after them.
"""

import contextlib
import os
import re
import sys
import tempfile

# Abseil / glog: severity letter, month and day, e.g. "I0000 00:00:1796590898.07 1858 port.cc:153]".
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ \S+:\d+\]")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}
_NOTICE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"


def kept(line, level):
    """Whether ``line`` stays in the output at ``TF_CPP_MIN_LOG_LEVEL`` ``level``."""
    match = _LOG_LINE.match(line)
    if match:
        return _SEVERITY[match.group(1)] >= level
    return not (level > 0 and line.startswith(_NOTICE))


@contextlib.contextmanager
def _stderr_filtered(level):
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode(errors="replace")
            sys.stderr.write("".join(s for s in text.splitlines(True) if kept(s, level)))
            sys.stderr.flush()


def import_tensorflow():
    """Imports TensorFlow, Keras and TFP and finds the devices, keeping the start-up lines
    below the level (see the module) out of stderr."""
    if "tensorflow" in sys.modules:
        return
    asked = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if asked is None:
        level = 3
    else:
        level = int(asked) if asked.strip().isdigit() else 0
    with _stderr_filtered(level) if level > 0 else contextlib.nullcontext():
        import keras  # noqa: F401
        import tensorflow
        import tensorflow_probability  # noqa: F401

        tensorflow.config.list_physical_devices()
