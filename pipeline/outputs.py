"""Writing outputs inside a job's folder, and nowhere else.

Names are already safe by construction (``pipeline.core.names``); this module
adds the filesystem half: the folder itself must not be a symlink, a file is
written to a temporary name with ``O_NOFOLLOW | O_EXCL`` and renamed into place,
so a planted symlink or a concurrent writer cannot redirect the bytes.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from pipeline.core.errors import StoreError


class OutputDir:
    """One job's output folder on a filesystem every worker can reach."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def ensure(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError("write_error", f"cannot create {self.path}: {exc.strerror}") from None
        if self.path.is_symlink():
            raise StoreError("unsafe_path", f"output folder {self.path} is a symlink")

    def write(self, name: str, data: bytes) -> Path:
        """Atomically write ``name`` (a bare file name) and return its path."""
        if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
            raise StoreError("unsafe_name", f"refusing output name {name!r}")
        # One lstat when the folder is there (a real folder, not a symlink); else create and check it.
        # Plain os calls, no pathlib: for a tiny image this method was half of the pool child's time.
        folder = os.fspath(self.path)
        try:
            ready = stat.S_ISDIR(os.lstat(folder).st_mode)
        except OSError:
            ready = False
        if not ready:
            self.ensure()
        target = os.path.join(folder, name)
        if os.path.islink(target):
            raise StoreError("unsafe_path", f"{target} is a symlink; not overwriting it")
        temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(temp, flags, 0o644)
            with open(fd, "wb", buffering=0) as out:
                out.write(data)
            os.replace(temp, target)
        except OSError as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise StoreError("write_error", f"cannot write {target}: {exc.strerror}") from None
        return Path(target)
