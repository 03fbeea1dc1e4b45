"""Atomic, non-clobbering file output shared by the library, the CLI and the experiments."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from robust_rl.errors import OutputExistsError

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "figure_png",
    "reserve_path",
    "save_figure",
]


def check_writable(path: str | os.PathLike[str], force: bool = False) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path`, refusing to overwrite an existing file.

    :param path: the file that is about to be written.
    :param force: allow overwriting an existing file.
    :raises FileExistsError: if the file exists and ``force`` is false.
    """
    p = Path(path)
    if p.exists() and not force:
        raise OutputExistsError(
            f"{p} already exists; pass force=True (CLI: --force) to overwrite it"
        )
    return p


def reserve_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` if it is free, else the first free ``stem_1.suffix``, ``stem_2.suffix``..."""
    p = Path(path)
    k = 1
    candidate = p
    while candidate.exists():
        candidate = p.with_name(f"{p.stem}_{k}{p.suffix}")
        k += 1
    return candidate


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, force: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file in the same folder, then rename).

    A reader never sees a half-written file, and a crash leaves the old file (if any) intact.

    :param path: destination file; its parent folders are created.
    :param data: the bytes to write.
    :param force: overwrite an existing file instead of raising :class:`FileExistsError`.
    """
    p = check_writable(path, force)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; use the usual permissions
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if force:
            os.replace(tmp, p)
        else:
            # link() fails if the destination appeared meanwhile: never clobber silently.
            try:
                os.link(tmp, p)
            except FileExistsError as exc:
                raise OutputExistsError(
                    f"{p} already exists; pass force=True (CLI: --force) to overwrite it"
                ) from exc
            except OSError:  # file systems without hard links
                check_writable(p, force=False)
                os.replace(tmp, p)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, force: bool = False, encoding: str = "utf-8"
) -> Path:
    """Text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding), force=force)


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """Render a matplotlib figure to PNG bytes (to be written with :func:`atomic_write_bytes`)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def save_figure(
    fig: Any, path: str | os.PathLike[str], *, dpi: int = 110, force: bool = False
) -> Path:
    """Render a matplotlib figure to PNG and write it atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, figure_png(fig, dpi), force=force)
