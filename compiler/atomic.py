"""Atomic file writing: a failure never leaves a half-written file or destroys the previous one.

The data goes to a temporary file beside the target (same folder, so the rename is atomic on one
filesystem), is flushed to disk, and only then renamed over the target.

What may be written is checked first (``check_target``), because an output path comes from a
command line: a path that does not exist yet in an existing, writable folder, a regular file, or
a symlink to a regular file. A symlink is written through: the file it points at is replaced and
the link itself stays, as ``>`` in a shell does. A directory, a device such as /dev/null, a FIFO
or a socket is refused, never replaced by a regular file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator

# the temporary file's name: short, so that any target name NAME_MAX allows still works
TMP_PREFIX, TMP_SUFFIX = ".netc-", ".tmp"

_KINDS = {  # what a non-regular file is, for the refusal
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}


def _refusal(code: int, reason: str, path: str) -> OSError:
    """An OSError whose ``strerror`` is the reason in words (the CLI prints it after the path)."""
    return OSError(code, reason, path)


def check_target(target: str | os.PathLike[str]) -> str:
    """The regular file a write to ``target`` replaces or creates: ``target`` itself, or for a
    symlink the file it points at. Raises OSError, ``strerror`` saying why, for anything else."""
    target = os.fspath(target)
    if not target:
        raise _refusal(errno.ENOENT, "an empty file name", target)
    real = os.path.realpath(target)
    try:
        st: os.stat_result | None = os.stat(target)  # follows symlinks
    except FileNotFoundError:
        if os.path.islink(target):
            raise _refusal(
                errno.ENOENT,
                f"it is a symlink to {os.readlink(target)}, which does not exist",
                target,
            ) from None
        st = None
    except NotADirectoryError:
        raise _refusal(
            errno.ENOTDIR, f"{os.path.dirname(target)} is not a folder", target
        ) from None
    if st is not None and not stat.S_ISREG(st.st_mode):
        if stat.S_ISDIR(st.st_mode):
            raise _refusal(errno.EISDIR, "it is a directory", target)
        kind = _KINDS.get(stat.S_IFMT(st.st_mode), "a special file")
        raise _refusal(errno.EINVAL, f"it is {kind}, not a regular file", target)
    folder = os.path.dirname(real)
    # the folder as the user wrote it; for a symlink, the folder of the file it points at
    shown = folder if os.path.islink(target) else os.path.dirname(target) or "."
    if not os.path.isdir(folder):
        raise _refusal(errno.ENOENT, f"the folder {shown} does not exist", target)
    # the temporary file is created in the folder: it must be writable even to replace a file
    if not os.access(folder, os.W_OK | os.X_OK):
        raise _refusal(errno.EACCES, f"the folder {shown} is not writable", target)
    return real


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[str]:
    """Yield a temporary path beside the file ``target`` names; on success it replaces it.

    ``target`` is checked first (``check_target``): a symlink to a regular file is written
    through, so the link stays and the file it points at gets the data. If the block raises
    (SIGINT, and SIGTERM in the CLI, arrive as exceptions too), the temporary file is removed
    and the target is left as it was.
    """
    real = check_target(target)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, suffix=TMP_SUFFIX, dir=os.path.dirname(real))
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _mode_for(real))
        # checked again: the target may have been replaced while the data was produced
        if check_target(target) != real:
            raise _refusal(errno.EBUSY, "it was replaced while being written", real)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _mode_for(target: str) -> int:
    """Keep an existing file's permissions; a new file gets 0666 less the umask, as open() would."""
    try:
        return os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp, open(tmp, "wb") as f:
        f.write(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))
