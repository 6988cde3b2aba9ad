"""Writing a run's files: one clear error when the file system refuses, and files that appear
whole or not at all.

A full disk, a read-only mount or a folder under a file surfaces deep inside whatever writes:
Python's ``OSError`` from ``open`` or ``zipfile``, TensorFlow's ``ResourceExhaustedError`` from
the ``SaveV2`` op of a SavedModel, ``PermissionDeniedError`` from its file system layer. `writing`
turns each into one `WriteFailed` that names the file meant and the cause, and says what was
kept; the writers stage their output under a temporary name and rename it into place only when
complete (``os.replace`` is atomic within a file system), so a failure leaves the previous
version intact.
"""

import contextlib
import errno
import json
import os


class WriteFailed(OSError):
    """A file could not be written; ``str()`` is one line: the file, the cause, what was kept."""

    def __init__(self, path, cause, kept=None, code=None):
        super().__init__(code, cause)
        self.path, self.cause, self.kept = path, cause, kept

    def __str__(self):
        kept = f"; {self.kept}" if self.kept else ""
        return f"could not write {self.path}: {self.cause}{kept}"


def first_line(error):
    """The first line of ``error``'s message; its type's name when it has none."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _cause(error):
    """The reason in ``error`` without its noise: an ``OSError``'s strerror, the first line of
    a TensorFlow error's message."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror, error.errno
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    lowered = message.lower()
    for code in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.ENOTDIR):
        if os.strerror(code).lower() in lowered:
            return os.strerror(code), code
    return message.strip().splitlines()[0], getattr(error, "errno", None)


def _write_errors():
    errors = (OSError,)
    try:  # TensorFlow's file system errors, when TensorFlow is imported
        import tensorflow as tf

        errors += (tf.errors.OpError,)
    except ImportError:
        pass
    return errors


@contextlib.contextmanager
def writing(path, kept=None):
    """Runs the body, which writes ``path``; a file system error becomes `WriteFailed` naming
    ``path`` (``kept``: what the failure left intact, e.g. "the previous checkpoint is
    intact")."""
    try:
        yield
    except WriteFailed:
        raise
    except _write_errors() as error:
        cause, code = _cause(error)
        if os.path.isdir(path) and getattr(error, "filename", None):
            path = error.filename  # the file in the folder meant
        raise WriteFailed(path, cause, kept, code) from error


def replace_file(path, write, mode="w", kept=None):
    """Writes ``path`` by ``write(file)`` into a staging file beside it, then renames it into
    place; a failure leaves the old ``path`` as it was and no staging file behind."""
    staging = f"{path}.{os.getpid()}.tmp"
    try:
        with writing(path, kept):
            with open(staging, mode, **({} if "b" in mode else {"newline": ""})) as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            os.remove(staging)


def write_json(path, value, kept=None, **options):
    """``json.dump(value)`` into ``path``, atomically (`replace_file`)."""
    replace_file(path, lambda f: json.dump(value, f, **options), kept=kept)


def writable_folder(folder, what="output folder"):
    """Makes ``folder`` (and its parents) and checks a file can be created in it; raises
    `WriteFailed` naming it and the cause (a file in the way, a read-only file system, no
    permission) before anything is written."""
    with writing(folder, f"cannot use it as the {what}"):
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test-{os.getpid()}")
        with open(probe, "w"):
            pass
        os.remove(probe)
