"""Reading the user's YAML files strictly, and owning an output folder while writing to it.

* :func:`read_yaml`: a file that is not UTF-8 text, is not valid YAML or repeats a key is refused
  with one line naming the file (and the line of the repeated key); YAML's safe loader builds
  plain data only, nothing from the file is executed.
* :class:`FolderLock`: an OS file lock (``fcntl.flock``) on ``FOLDER/.robust-rl.lock`` held while
  a command writes the folder (re-entrant within a process); a second writer is refused with one
  line naming the holder. The file is removed on release; the OS releases the lock when its
  process ends, however it ends, so a crashed run leaves no stale lock (the file stays, unlocked,
  and the next writer takes it). Where ``fcntl`` is missing (Windows) no lock is taken.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from robust_rl.errors import InvalidArgumentError, MissingFileError, OutputExistsError, UserError

__all__ = [
    "FolderLock",
    "FolderLockedError",
    "check_output_folder",
    "read_yaml",
    "refuse_existing",
]

LOCK_FILE = ".robust-rl.lock"
#: folders whose lock this process holds -> how many FolderLock blocks hold it (re-entrant)
_HELD: dict[str, int] = {}


class _StrictLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key that a mapping repeats."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            first = seen.get(key)
        except TypeError:  # unhashable key: the base constructor reports it
            continue
        line = key_node.start_mark.line + 1
        if first is not None:
            raise InvalidArgumentError(
                f"key {key!r} is repeated at line {line} (first at line {first}); give each key once"
            )
        seen[key] = line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def read_yaml(path: str | os.PathLike[str], what: str) -> Any:
    """The plain data of a YAML file (``None`` if empty), or one clear error.

    :param path: the file.
    :param what: how to name it in errors (``"config file"``, ``"suite file"``...).
    :raises MissingFileError: ``path`` is not a file.
    :raises InvalidArgumentError: not UTF-8 text, not valid YAML, or a repeated key.
    """
    p = Path(path)
    if p.is_dir():
        raise InvalidArgumentError(f"{what} {p} is a folder; give a YAML file")
    if not p.is_file():
        raise MissingFileError(f"{what} {p} does not exist")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidArgumentError(f"{what} {p} is not a UTF-8 text (YAML) file") from None
    if "\x00" in text:
        raise InvalidArgumentError(f"{what} {p} is not a text (YAML) file (it holds NUL bytes)")
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except InvalidArgumentError as exc:
        raise InvalidArgumentError(f"{what} {p}: {exc}") from None
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise InvalidArgumentError(f"{what} {p} is not valid YAML: {detail}") from None


class FolderLockedError(UserError, RuntimeError):
    """Another process is writing the output folder."""


class FolderLock:
    """Hold ``folder``'s lock for a ``with`` block (the folder is created).

    :param folder: the output folder.
    :param command: what holds it, for the message a second writer gets (e.g. ``"robust-rl train"``).
    """

    def __init__(self, folder: str | os.PathLike[str], command: str) -> None:
        self.folder = Path(folder)
        self.command = command
        self._fh: Any = None
        self._key: str | None = None
        self._created = False

    def __enter__(self) -> FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover  (Windows: no advisory locks here)
            return self
        created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        key = str(self.folder.resolve())
        if key in _HELD:  # this process holds it already (a command around a library call)
            _HELD[key] += 1
            self._key = key
            return self
        path = self.folder / LOCK_FILE
        while True:
            fh = open(path, "a+")
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                fh.seek(0)
                holder = fh.read().strip() or "another process"
                fh.close()
                raise FolderLockedError(
                    f"{self.folder} is being written by {holder}; wait for it to finish or "
                    "choose another output folder"
                ) from None
            try:  # the holder before us may have removed the file meanwhile: lock the new one
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            fh.close()
        fh.seek(0)
        fh.truncate()
        info = {"command": self.command, "pid": os.getpid(), "host": socket.gethostname()}
        info["since"] = time.strftime("%Y-%m-%d %H:%M:%S")
        fh.write(json.dumps(info))
        fh.flush()
        self._fh = fh
        self._key = key
        self._created = created
        _HELD[key] = 1
        return self

    def __exit__(self, *exc_info: object) -> None:
        key = self._key
        if key is None:
            return
        self._key = None
        _HELD[key] -= 1
        if _HELD[key] == 0:
            del _HELD[key]
            if self._fh is not None:
                # no trace: the lock file goes (a waiting locker checks it locked the file that
                # is still there), and so does a folder created for the lock alone
                (self.folder / LOCK_FILE).unlink(missing_ok=True)
                if self._created and not any(self.folder.iterdir()):
                    self.folder.rmdir()
                self._fh.close()  # closing the file releases the lock
                self._fh = None


def refuse_existing(paths: Iterable[Path], force: bool) -> None:
    """Before any work: refuse the first of ``paths`` that exists, unless ``force`` (a command's
    ``--force``)."""
    if force:
        return
    for path in paths:
        if path.exists():
            raise OutputExistsError(f"{path} already exists; pass --force to overwrite it")


def check_output_folder(name: str, folder: Path) -> None:
    """Refuse an output folder that is a file, lies inside one, or cannot be written (a
    read-only file system, no permission), before any work."""
    for p in (folder, *folder.parents):
        if p.exists():
            if not p.is_dir():
                where = "is a file" if p == folder else f"lies inside the file {p}"
                raise InvalidArgumentError(f"{name} {folder} {where}; give a folder")
            if not os.access(p, os.W_OK | os.X_OK):
                where = "" if p == folder else f" (its folder {p} is not)"
                raise InvalidArgumentError(
                    f"{name} {folder} is not writable{where}: a read-only file system or no "
                    "permission; give a folder you can write to"
                )
            return
