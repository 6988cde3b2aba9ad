"""`FolderLock`: a training run owns its output folder while it runs.

Two runs writing one folder corrupt each other: the second "resumes" from checkpoints the
first is still writing and removing, both rewrite ``history.csv``, both export. The lock is an
advisory ``flock`` on ``FOLDER/.zoo-run.lock``, which also holds who took it (process, host,
start, command) for the refusal's message. The kernel drops a ``flock`` when its process ends,
however it ends, so a killed run (SIGKILL, a crash, a lost machine's local disk) leaves no stale
lock behind: the file stays, but nobody holds it, and the next run takes it. On Linux, NFS
emulates ``flock`` with POSIX locks, so runs on different machines sharing a folder exclude each
other too; where the file system cannot lock at all, the run says so and goes on unlocked.
"""

import datetime
import errno
import fcntl
import json
import os
import socket

from zoo.storage import writable_folder, writing

LOCK = ".zoo-run.lock"


class FolderInUse(ValueError):
    """Another live run holds the folder."""


class FolderLock:
    """``with FolderLock(folder, command):`` holds ``folder`` for the body's run.

    Entering makes ``folder`` (a `zoo.storage.WriteFailed` names it when that is impossible:
    a file in the way, a read-only file system) and raises `FolderInUse` when another run holds
    it. ``created``: the folder did not exist before; `discard` removes it again when the run
    failed before writing anything into it.
    """

    def __init__(self, folder, command=None):
        self.folder = folder
        self.path = os.path.join(folder, LOCK)
        self.command = command
        self.fd = None
        self.created = False

    def __enter__(self):
        self.created = not os.path.exists(self.folder)
        writable_folder(self.folder)
        with writing(self.path, "cannot lock the output folder"):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.read(fd, 4096))
            os.close(fd)
            raise FolderInUse(_in_use(self.folder, holder)) from None
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                os.close(fd)
                raise
            print(f"warning: {self.folder}'s file system cannot lock; two runs there would clash")
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": self.command,
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc):
        self.release()

    def release(self):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def discard(self):
        """Removes the folder when this run created it and wrote nothing but the lock."""
        if self.created and os.listdir(self.folder) == [LOCK]:
            os.remove(self.path)
            os.rmdir(self.folder)


def check_free(folder):
    """Raises `FolderInUse` when a live run holds ``folder``; writes nothing (the command line
    asks before it imports TensorFlow; the run takes the lock itself)."""
    try:
        fd = os.open(os.path.join(folder, LOCK), os.O_RDONLY)
    except OSError:
        return  # no lock file: no run has held the folder, or it cannot be read (the run says)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise FolderInUse(_in_use(folder, _describe(os.read(fd, 4096)))) from None
    except OSError:
        pass  # cannot lock here: the run warns
    finally:
        os.close(fd)


def _in_use(folder, holder):
    return (
        f"{folder} is in use by another run ({holder}); wait for it to end, or choose another "
        "--out."
    )


def _describe(content):
    try:
        holder = json.loads(content.decode())
        where = f"process {holder['pid']} on {holder['host']}, started {holder['started']}"
        return where + (f": {holder['command']}" if holder.get("command") else "")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return "a process that left no description"
