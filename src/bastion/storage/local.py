"""Files under one directory on the local filesystem.

Writes are atomic and durable before they return: each file goes to a temporary file beside
its target, its data is synced, it is renamed into place, and the directories whose entries
changed (the target's, and any directory created on the way with its parent) are synced, so
neither a reader nor a crash can see a partial file, nor can a crash lose a file once ``put``
(or a staging's ``publish``) returned, which an upload waits for before committing the file's
row.

Paths are walked one component at a time from the store's root with ``openat``-style calls
(``dir_fd``), refusing ``..``, empty components and symlinks (``O_NOFOLLOW``), instead of
``realpath`` followed by a prefix check. Why: stored paths are content paths the store's own
code produced, so a lexical check already keeps them inside the root; refusing symlinks covers
the only other way out, a link planted inside the store. The walk checks and uses the very same
directory handles, so a component swapped for a symlink between check and use is still refused
(``realpath`` then a second lookup could not promise that), it yields the directory handles the
write needs anyway for ``mkdir``, the renames and the directory syncs, and it is cheaper than
``Path.resolve()``, which lstats every component of the root as well in pure Python.
"""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, Sequence

from . import Source, opened
from .leftovers import process_tag

_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
# A renamed-into-place file needs its data and the metadata that locates the data (size,
# blocks) on disk; fdatasync gives exactly that, with the new inode itself (its mode was set
# when it was created). Its timestamps do not matter, and its directory entry is made durable
# by syncing the directory. macOS has no fdatasync.
_sync_data = getattr(os, "fdatasync", os.fsync)
_CHUNK = 64 * 1024  # as shutil's: a 1 MiB read of a small file costs a 1 MiB allocation
TEMP_PREFIX = ".tmp-"  # what an interrupted write can leave behind; iter_paths skips it


def _components(path: str) -> list[str]:
    """The path's components, refusing any that could leave the directory it is joined to."""
    if not path or "\x00" in path or path.startswith("/"):
        raise ValueError(f"path escapes the store: {path!r}")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise ValueError(f"path escapes the store: {path!r}")
    return parts


def _refused(path: str) -> ValueError:
    return ValueError(f"path escapes the store (symlink): {path!r}")


def _is_symlink(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _open_directory(name: str, dir_fd: int, path: str) -> int:
    try:
        return os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as exc:
        # O_NOFOLLOW makes a symlink ELOOP on Linux and macOS (EMLINK on FreeBSD).
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR) and _is_symlink(name, dir_fd):
            raise _refused(path) from None
        raise


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy(source: BinaryIO, fd: int) -> None:
    while True:
        chunk = source.read(_CHUNK)
        if not chunk:
            return
        _write_all(fd, chunk)


class _Directories:
    """Open handles on the directories from the root down to one directory of the store."""

    def __init__(self, root: str, parts: list[str], path: str, *, create: bool,
                 dir_mode: int | None = None):
        self.parts = parts
        self.fds: list[int] = []
        # Directories this walk created (or raced a concurrent write to create): they, and the
        # directory holding the topmost of them, must be synced for the new entries to survive
        # a crash. A directory merely found (opened) that a concurrent write created a moment
        # ago is synced by that write; on journaling filesystems (ext4, xfs) our own syncs
        # commit its creation too, the journal being one.
        self.unsynced: list[int] = []
        try:
            self.fds.append(os.open(root, _DIRECTORY))
            creating = False
            for index, part in enumerate(parts):
                parent = self.fds[-1]
                # A content-addressed leaf is nearly always new: creating it straight away
                # saves a failed lookup.
                creating = creating or (create and index == len(parts) - 1)
                if not creating:
                    try:
                        self.fds.append(_open_directory(part, parent, path))
                        continue
                    except FileNotFoundError:
                        if not create:
                            raise
                    creating = True
                try:
                    os.mkdir(part, dir_fd=parent)
                except FileExistsError:
                    pass
                if not self.unsynced:
                    self.unsynced.append(parent)
                self.fds.append(_open_directory(part, parent, path))
                if dir_mode is not None:
                    os.fchmod(self.fds[-1], dir_mode)  # not left to the process's umask
                self.unsynced.append(self.fds[-1])
        except BaseException:
            self.close()
            raise

    @property
    def leaf(self) -> int:
        return self.fds[-1]

    def remove_leaf_if_empty(self) -> None:
        """Remove the leaf directory if nothing is in it (a discarded staging's)."""
        if len(self.fds) < 2 or not self.parts:
            return
        try:
            os.rmdir(self.parts[-1], dir_fd=self.fds[-2])
        except OSError:  # not empty (a file, or another upload's staging), or already gone
            pass

    def sync(self) -> None:
        """Sync the leaf directory (its renamed entries) and every directory created above it."""
        os.fsync(self.leaf)
        for fd in reversed(self.unsynced):
            if fd != self.leaf:
                os.fsync(fd)

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def __enter__(self) -> "_Directories":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


INFLIGHT_SUFFIX = "inflight"


def inflight_journal(root: str, tag: str) -> str:
    """The file naming the directories where the process ``tag`` (``process_tag``) has
    temporary files, one a line (see :class:`_InFlight`)."""
    return f"{root}/{TEMP_PREFIX}{tag}{INFLIGHT_SUFFIX}"


class _InFlight:
    """Where this process has temporary files in each store, written down before each is made.

    When a web worker is killed, gunicorn's master removes its temporary files at once
    (``leftovers.of_process``). Listing a large store to find them would hold the master, which
    also restarts workers, for minutes; the journal names the few directories to look in. It is
    appended to when a directory gets its first temporary file, and removed when the process
    has none left in that store, so it stays a few lines long. It is not synced: after a crash
    of the machine no process is left to tell apart, and the hourly sweep removes what is old.
    """

    def __init__(self):
        self._reset()
        # A child forked while another thread held the lock would otherwise wait forever, and
        # it has none of its parent's writes in flight.
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}

    def add(self, root: str, directory: str) -> None:
        with self._lock:
            counts = self._counts
            key = (root, directory)
            if key not in counts:
                journal = inflight_journal(root, process_tag())
                fd = os.open(journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW,
                             0o600)
                try:
                    os.write(fd, directory.encode("utf-8", "surrogateescape") + b"\n")
                except BaseException:  # a full disk: the write is refused, as the file's would be
                    if not any(r == root for r, _directory in counts):
                        os.unlink(journal)
                    raise
                finally:
                    os.close(fd)
                counts[key] = 0
            counts[key] += 1

    def done(self, root: str, directory: str) -> None:
        with self._lock:
            counts = self._counts
            key = (root, directory)
            if key not in counts:
                return
            counts[key] -= 1
            if counts[key]:
                return
            del counts[key]
            if not any(r == root for r, _directory in counts):
                try:
                    os.unlink(inflight_journal(root, process_tag()))
                except FileNotFoundError:
                    pass


_inflight = _InFlight()


def _create_temp(dir_fd: int, mode: int | None = None) -> tuple[int, str]:
    # Like mkstemp (exclusive create, owner-only mode) but relative to the directory handle.
    while True:
        name = f"{TEMP_PREFIX}{process_tag()}{os.urandom(8).hex()}.part"
        try:
            fd = os.open(name, _NEW_FILE, 0o600, dir_fd=dir_fd)
        except FileExistsError:
            continue
        if mode is not None:
            os.fchmod(fd, mode)  # before anything is written or the file is visible
        return fd, name


class Staging:
    """Files written out of sight, then published (made visible) together, or discarded.

    ``add`` writes each file to a temporary file beside its target and syncs its data;
    ``publish`` renames them into place and syncs each directory whose entries changed (and
    those its walk created) once, however many files it received. Readers see a file complete
    or not at all, and once ``publish`` returns, a crash loses none of them. Until ``publish``
    nothing is visible, and ``discard`` removes every trace but the directories.
    """

    def __init__(self, store: "LocalFileStore"):
        self._store = store
        self._directories: dict[str, _Directories] = {}
        self._staged: list[tuple[int, str, str, str]] = []  # (dir fd, temp name, name, path)
        self._root = store._root
        self._published: list[str] = []
        self.paths: list[str] = []

    def add(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        items = list(items)
        for path, _source in items:
            _components(path)  # refuse a bad path before writing anything
        fds: list[int] = []
        try:
            for path, source in items:
                directory, _, name = path.rpartition("/")
                directories = self._directories.get(directory)
                if directories is None:
                    directories, _name = self._store._directories(path, create=True)
                    self._directories[directory] = directories
                _inflight.add(self._root, directory)
                for attempt in range(3):
                    try:
                        fd, temp = _create_temp(directories.leaf, self._store.file_mode)
                        break
                    except FileNotFoundError:
                        # A concurrent identical upload that was refused removed the empty
                        # directory between our walk and this file: walk (and create) again.
                        if attempt == 2:
                            _inflight.done(self._root, directory)
                            raise
                        directories.close()
                        directories, _name = self._store._directories(path, create=True)
                        self._directories[directory] = directories
                    except BaseException:
                        _inflight.done(self._root, directory)
                        raise
                fds.append(fd)
                self._staged.append((directories.leaf, temp, name, path))
                self.paths.append(path)
                _copy(source, fd)
            # Every file's data first, then the syncs: the disk can take them together.
            for fd in fds:
                _sync_data(fd)
        finally:
            for fd in fds:
                os.close(fd)

    def publish(self) -> None:
        """Rename every staged file into place and make the renames durable."""
        try:
            while self._staged:
                leaf, temp, name, path = self._staged[0]
                os.replace(temp, name, src_dir_fd=leaf, dst_dir_fd=leaf)
                self._staged.pop(0)
                _inflight.done(self._root, path.rpartition("/")[0])
                self._published.append(path)
            for directories in self._directories.values():
                directories.sync()
        finally:
            self._close()

    def discard(self) -> None:
        """Remove what was staged and not yet published, then delete what was published (see
        ``storage.Staged.discard`` for when that is safe), and the directories left empty."""
        self._close(remove_empty=True)
        published, self._published = self._published, []
        for path in published:
            self._store.delete(path)
        for path in published:
            try:
                directories, _name = self._store._directories(path)
            except OSError:
                continue
            with directories:
                directories.remove_leaf_if_empty()

    def _close(self, *, remove_empty: bool = False) -> None:
        staged, self._staged = self._staged, []
        try:
            for leaf, temp, _name, path in staged:
                try:
                    os.unlink(temp, dir_fd=leaf)
                except FileNotFoundError:
                    pass
                _inflight.done(self._root, path.rpartition("/")[0])
        finally:
            directories, self._directories = self._directories, {}
            for handle in directories.values():
                if remove_empty:
                    # Content-addressed: the leaf is this file's own. A concurrent upload of
                    # the same bytes that opened it a moment ago walks again (see add).
                    handle.remove_leaf_if_empty()
                handle.close()


class LocalFileStore:
    """Files under one directory, written atomically and durably (see the module docstring)."""

    def __init__(self, root: Path | str, *, file_mode: int | None = None,
                 dir_mode: int | None = None):
        """``file_mode``/``dir_mode``: for files another user must read (nginx serving
        rendered pages); by default files are the owner's only."""
        self.file_mode, self.dir_mode = file_mode, dir_mode
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        # Resolved once: symlinks above the root are the operator's choice; below it none
        # is followed.
        self._resolved_root = self.root.resolve()
        self._root = str(self._resolved_root)

    def _directories(self, path: str, *, create: bool = False) -> tuple[_Directories, str]:
        *dirs, name = _components(path)
        return _Directories(self._root, dirs, path, create=create, dir_mode=self.dir_mode), name

    def put(self, path: str, source: BinaryIO) -> None:
        """Store the bytes read from ``source`` at ``path``; visible only when complete."""
        self.put_many([(path, source)])

    def put_many(self, items: Iterable[tuple[str, BinaryIO]]) -> None:
        """Store several files; each becomes visible only when complete and durable.

        The files of one directory are written together (see :class:`Staging`). On failure no
        temporary file is left behind; files already renamed stay, complete, for the caller to
        delete or keep.
        """
        staging = Staging(self)
        try:
            staging.add(items)
            staging.publish()
        except BaseException:
            staging._close()  # what was renamed stays, complete (see above)
            raise

    def stage(self, items: Sequence[Source]) -> Staging:
        """Write ``items`` beside their targets, synced and out of sight (see :class:`Staging`)."""
        staging = Staging(self)
        try:
            with opened(items) as sources:
                staging.add(sources)
        except BaseException:
            staging.discard()
            raise
        return staging

    def open(self, path: str) -> BinaryIO:
        directories, name = self._directories(path)
        with directories:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=directories.leaf)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.EMLINK):
                    raise _refused(path) from None
                raise
        try:
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def _lstat(self, path: str) -> os.stat_result:
        directories, name = self._directories(path)
        with directories:
            found = os.stat(name, dir_fd=directories.leaf, follow_symlinks=False)
        if stat.S_ISLNK(found.st_mode):
            raise _refused(path)
        return found

    def size(self, path: str) -> int:
        return self._lstat(path).st_size

    def exists(self, path: str) -> bool:
        try:
            return stat.S_ISREG(self._lstat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            return False

    def delete(self, path: str) -> None:
        try:
            directories, name = self._directories(path)
            with directories:
                os.unlink(name, dir_fd=directories.leaf)
        except FileNotFoundError:
            pass

    def iter_paths(self) -> Iterator[str]:
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    continue
                yield str(Path(dirpath, name).relative_to(self.root))

    def temp_files(self) -> Iterator[Path]:
        """The temporary files of writes in progress, or of writes a killed process left."""
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.startswith(TEMP_PREFIX):
                    yield Path(dirpath, name)

    def temp_files_of(self, tag: str) -> list[Path]:
        """The temporary files of the process ``tag`` (``process_tag``), found in the
        directories its journal names (see :class:`_InFlight`), and the journal itself; the
        store is not listed."""
        journal = Path(inflight_journal(self._root, tag))
        try:
            # A killed process's journal: only its own lines, and only as much as it wrote.
            lines = journal.read_bytes()[:1 << 20].decode("utf-8", "surrogateescape").splitlines()
        except FileNotFoundError:
            return []
        prefix = TEMP_PREFIX + tag
        found: list[Path] = []
        for directory in dict.fromkeys(lines):
            try:
                parts = _components(directory) if directory else []
            except ValueError:
                continue  # never a path the store would have written
            try:
                with os.scandir(Path(self._root, *parts)) as entries:
                    found += [Path(entry.path) for entry in entries
                              if entry.name.startswith(prefix) and entry.is_file(follow_symlinks=False)]
            except (FileNotFoundError, NotADirectoryError):
                continue
        return found + [journal]

    def local_path(self, path: str) -> str | None:
        try:
            self._lstat(path)  # refuses symlinks
        except (FileNotFoundError, NotADirectoryError):
            pass  # the caller's open() reports it
        return f"{self._root}/{path}"
