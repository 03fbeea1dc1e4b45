"""Atomic, non-clobbering file output: what the library, the CLI and the experiment scripts
write results with (public, so that scripts of your own write theirs the same way).

* :func:`atomic_write_text` / :func:`atomic_write_bytes`: a temporary file beside the target,
  flushed to disk, then renamed over it; a reader sees the old file or the new one, never half
  of one, and without ``force`` an existing file is never replaced (refused with
  :class:`~robust_rl.errors.OutputExistsError`, also when it appears during the write).
* :func:`atomic_publish`: several files written as one set (a failure leaves the previous set).
* :func:`save_figure` / :func:`figure_png`: a matplotlib figure as PNG, atomically, with a
  256-colour palette (:func:`palette_png`).
* :func:`json_text`: JSON for result records, compact yet diffable (one line per table row);
  :func:`csv_text`: a table of rows as CSV.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> atomic_write_text(folder / "table.md", "| a |").name
'table.md'
>>> atomic_write_text(folder / "table.md", "again")
Traceback (most recent call last):
...
robust_rl.errors.OutputExistsError: ...table.md already exists; pass force=True (CLI: --force) to overwrite it
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from robust_rl.errors import OutputExistsError

__all__ = [
    "atomic_publish",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_writable",
    "csv_text",
    "figure_png",
    "json_text",
    "palette_png",
    "reserve_path",
    "save_figure",
    "temp_beside",
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
    fd, tmp = temp_beside(p)
    try:
        _write_synced(fd, data)
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


def temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, str]:
    """A new temporary file in ``path``'s folder (``.name.XXXX<suffix>``), with the permissions
    any other output gets (``mkstemp`` creates it 0600): ``(fd, path)``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


def _write_synced(fd: int, data: bytes) -> None:
    """Write ``data`` to the open descriptor ``fd``, flush it to disk and close it."""
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, force: bool = False, encoding: str = "utf-8"
) -> Path:
    """Text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding), force=force)


def figure_png(fig: Any, dpi: int = 110, *, close: bool = False) -> bytes:
    """Render a matplotlib figure to PNG bytes (to be written with :func:`atomic_write_bytes`).

    The image is stored with a 256-colour palette (Pillow's median cut, which matplotlib
    installs): line plots have few colours, and the file is about a third of the size.

    :param close: close the figure afterwards (``pyplot`` keeps every open figure alive).
    """
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    if close:
        import matplotlib.pyplot as plt

        plt.close(fig)
    return palette_png(buf.getvalue())


def palette_png(png: bytes) -> bytes:
    """The PNG image ``png`` with a 256-colour palette (Pillow's median cut), the same bytes if
    it has a palette already."""
    import io

    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        if image.mode == "P":
            return png
        palette = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def save_figure(
    fig: Any,
    path: str | os.PathLike[str],
    *,
    dpi: int = 110,
    force: bool = False,
    close: bool = False,
) -> Path:
    """Render a matplotlib figure to PNG and write it atomically (see :func:`atomic_write_bytes`;
    ``close`` as in :func:`figure_png`)."""
    return atomic_write_bytes(path, figure_png(fig, dpi, close=close), force=force)


def atomic_publish(
    files: list[tuple[Path, bytes]], *, force: bool = False, remove: Iterable[Path] = ()
) -> list[Path]:
    """Write several files as one set: all are written to temporary files beside their
    destinations first (and synced), then renamed into place, then ``remove`` is deleted.

    A failure while writing (a full disk, a read-only folder) leaves every destination as it was
    and no temporary file behind; renames and deletions need no space.

    :param files: ``(destination, bytes)`` pairs; parent folders are created.
    :param force: replace existing destinations (else :class:`FileExistsError` before writing).
    :param remove: files of the previous set that the new one does not have (deleted last).
    :return: the destinations.
    """
    for path, _ in files:
        check_writable(path, force)
    temps: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = temp_beside(path)
            temps.append((tmp, path))
            _write_synced(fd, data)
        for tmp, path in temps:
            os.replace(tmp, path)
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    for stale in remove:
        Path(stale).unlink(missing_ok=True)
    return [path for path, _ in files]


def csv_text(rows: Iterable[Mapping[str, Any]], fields: Sequence[str] | None = None) -> str:
    """The table ``rows`` (one mapping per row) as CSV text, ``\\n`` line ends; the columns
    are ``fields`` (default: the first row's keys; no rows and no ``fields``: empty text).

    >>> print(csv_text([{"seed": 0, "mean": 500.0}, {"seed": 1, "mean": 9.5}]), end="")
    seed,mean
    0,500.0
    1,9.5
    """
    import csv
    import io

    rows = list(rows)
    if fields is None and not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(fields if fields is not None else rows[0]), lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def json_text(obj: Any) -> str:
    """``obj`` as JSON text that stays small and reads well in a diff.

    Objects are indented one space per level; a list of lists or objects (the rows of a
    table) has one element per line, each written on that line without spaces; every other
    list is written on one line. ``json.loads`` reads it back exactly (floats keep their
    shortest round-trip repr).

    >>> print(json_text({"axes": ["m", "g"], "rows": [[1, {"m": 0.5}], [2, {}]]}))
    {
     "axes": ["m","g"],
     "rows": [
      [1,{"m":0.5}],
      [2,{}]
     ]
    }
    """
    return _json(obj, 0) + "\n"


def _json(obj: Any, level: int) -> str:
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = (f"{inner}{json.dumps(str(k))}: {_json(v, level + 1)}" for k, v in obj.items())
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if (
        isinstance(obj, (list, tuple))
        and obj
        and all(isinstance(x, (list, tuple, dict)) for x in obj)
    ):
        lines = (inner + json.dumps(x, separators=(",", ":")) for x in obj)
        return "[\n" + ",\n".join(lines) + f"\n{pad}]"
    return json.dumps(obj, separators=(",", ":"))
