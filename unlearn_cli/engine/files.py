"""Writing files safely: fail before the work when an output cannot be written, never show a
reader half a file, leave nothing behind that trips a rerun, and keep timestamps reproducible."""

from __future__ import annotations

import datetime as dt
import errno
import glob
import hashlib
import json
import math
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from unlearn_cli import distributed
from unlearn_cli.errors import OutputError, ResourceError, UsageError


def source_date_epoch() -> int | None:
    """SOURCE_DATE_EPOCH as an integer, or None when unset."""
    text = os.environ.get("SOURCE_DATE_EPOCH")
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise UsageError(
            f"SOURCE_DATE_EPOCH={text!r} is not a whole number of seconds since 1970; "
            "unset it or give one, e.g. SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)"
        )
    return int(text)


def timestamp() -> str:
    """Now in UTC to the second, or SOURCE_DATE_EPOCH when it is set."""
    epoch = source_date_epoch()
    when = (
        dt.datetime.now(dt.timezone.utc)
        if epoch is None
        else dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    )
    return when.isoformat(timespec="seconds")


def recorded_seconds(seconds: float) -> float:
    """A measured duration as checkpoints record it: 0 under SOURCE_DATE_EPOCH, whose point is
    that the file depends on its inputs only."""
    return 0.0 if source_date_epoch() is not None else round(seconds, 3)


def finite_only(data: Any, why: dict[str, str] | None = None, at: str = "") -> Any:
    """`data` with every float that is not finite (NaN, inf) made None; `why` collects, by
    dotted path, what each was."""
    if isinstance(data, float) and not math.isfinite(data):
        if why is not None:
            why[at or "value"] = f"not finite ({data}): it could not be computed"
        return None
    if isinstance(data, dict):
        return {k: finite_only(v, why, f"{at}.{k}" if at else str(k)) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_only(v, why, f"{at}[{n}]") for n, v in enumerate(data)]
    return data


def json_text(data: Any, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259 has no NaN or Infinity): a value that is not finite is null, and a
    document that is a mapping says why under `not_finite` (dotted path -> reason)."""
    why: dict[str, str] = {}
    clean = finite_only(data, why)
    if why and isinstance(clean, dict):
        clean = {**clean, "not_finite": why}
    return json.dumps(clean, indent=indent, default=str, allow_nan=False)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_writable(path: str | Path) -> Path:
    """Fail now, before any work, if `path` cannot be written."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"cannot write {path}: {parent} is a file, not a directory")
    if not parent.is_dir():
        raise OutputError(
            f"cannot write {path}: directory {parent} does not exist; create it first"
        )
    if not os.access(parent, os.W_OK):
        raise OutputError(f"cannot write {path}: directory {parent} is not writable")
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a directory; name a file")
    return path


def check_not_input(output: str | Path, inputs, flag: str, hint: str = "") -> None:
    """Refuse to write `output` over one of the files the command reads (`inputs`), however
    either is named (relative paths, symlinks, hard links); `hint` says what else to do."""
    output = Path(output)
    for source in (Path(p) for p in inputs if p is not None):
        if output.exists() and source.exists() and os.path.samefile(output, source):
            raise OutputError(
                f"{flag} {output} is also an input of this command ({source}); name another "
                f"file{hint}"
            )


TMP_SUFFIX = ".unlearn-tmp"  # `.NAME.HOST.PID.unlearn-tmp`: a write in progress, or one killed


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.{socket.gethostname()}."


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of `path` left by writers on this host that no longer run (a SIGKILL)."""
    prefix = _temp_prefix(path)
    for tmp in path.parent.glob(f"{glob.escape(prefix)}*{TMP_SUFFIX}"):
        pid = tmp.name[len(prefix) : -len(TMP_SUFFIX)]
        if pid.isdigit() and not _running(int(pid)):
            tmp.unlink(missing_ok=True)


def keep_aside(path: Path) -> Path | None:
    """A copy of `path` as it is now (a hard link where the filesystem has them), named as a
    temp file so that one a killed process left behind is removed by the next; None when there
    is no such file. `put_back` restores it, an unlink discards it."""
    if not path.is_file():
        return None
    kept = path.with_name(f"{path.name}.before")
    _remove_stale_temps(kept)
    copy = path.parent / f"{_temp_prefix(kept)}{os.getpid()}{TMP_SUFFIX}"
    copy.unlink(missing_ok=True)
    try:
        os.link(path, copy)
    except OSError:  # a filesystem without hard links
        shutil.copy2(path, copy)
    return copy


def put_back(copy: Path | None, path: Path) -> None:
    """Undo a write of `path`: the file `keep_aside` kept, or none if there was none."""
    if copy is None:
        path.unlink(missing_ok=True)
    else:
        os.replace(copy, path)
    _fsync_dir(path.parent)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _written_meanwhile(path: Path) -> OutputError:
    return OutputError(
        f"{path} was written by another process while this one ran; nothing written "
        "(name another output, or allow overwriting this one)"
    )


def _link_new(tmp: Path, path: Path) -> None:
    """Move `tmp` to `path` only if `path` does not exist, atomically (a hard link fails on an
    existing name, where a rename would replace it)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _written_meanwhile(path) from None
    except OSError:  # a filesystem without hard links: claim the name first, then fill it
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            raise _written_meanwhile(path) from None
        os.replace(tmp, path)
    tmp.unlink(missing_ok=True)


def atomic_write(path: Path, write, overwrite: bool = True) -> None:
    """Call `write(tmp_path)` on a temp file beside `path`, then move it into place, so readers
    never see half a file and a killed run leaves `path` as it was. With `overwrite=False` an
    existing `path` (written meanwhile by another process) is an OutputError, and left alone.

    Temp files are named `.NAME.HOST.PID.unlearn-tmp`; the next write to `path` removes those
    whose process is gone. Under torchrun only rank 0 writes; the other ranks' calls return
    without touching the disk."""
    path = check_writable(path)
    if not distributed.is_main():
        return
    _remove_stale_temps(path)
    tmp = path.parent / f"{_temp_prefix(path)}{os.getpid()}{TMP_SUFFIX}"
    try:
        write(str(tmp))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _link_new(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise write_failed(path, e) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)  # a full disk, a quota, a file size limit


def write_failed(path: Path, e: OSError) -> OutputError | ResourceError:
    """The one line for a write the system refused; `path` was left as it was."""
    reason = e.strerror or type(e).__name__
    if e.errno in FULL:
        return ResourceError(
            f"cannot write {path}: {reason}; nothing written and {path.name} left as it was "
            "(free some space, or write to another disk)"
        )
    return OutputError(f"cannot write {path}: {reason}; nothing written")
