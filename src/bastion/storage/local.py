from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


class LocalFileStore:
    """Files under one directory, written atomically: temp file, fsync, rename, fsync dir."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._resolved_root = self.root.resolve()

    def _resolve(self, path: str) -> Path:
        root = self._resolved_root
        target = (root / path).resolve()
        if target == root or not target.is_relative_to(root):
            raise ValueError(f"path escapes the store: {path!r}")
        return target

    def put(self, path: str, source: BinaryIO) -> None:
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(source, out, 1024 * 1024)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        dir_fd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def open(self, path: str) -> BinaryIO:
        return open(self._resolve(path), "rb")

    def size(self, path: str) -> int:
        return self._resolve(path).stat().st_size

    def exists(self, path: str) -> bool:
        return self._resolve(path).is_file()

    def delete(self, path: str) -> None:
        try:
            self._resolve(path).unlink()
        except FileNotFoundError:
            pass

    def iter_paths(self) -> Iterator[str]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(".tmp-"):
                    continue
                yield str(Path(dirpath, name).relative_to(self.root))

    def local_path(self, path: str) -> str | None:
        return str(self._resolve(path))
