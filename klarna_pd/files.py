"""Writing files so that a reader never sees half of one (nor loses what was read), and hashing them."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from .errors import DataError

_CHUNK = 1 << 20


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    if a.exists() and b.exists():
        return os.path.samefile(a, b)  # links and other names of one file included
    return os.path.realpath(a) == os.path.realpath(b)


def check_outputs(inputs: Mapping[str, str | Path | None], outputs: Mapping[str, str | Path | None]) -> None:
    """Refuse, before any work, output paths that would overwrite an input or each other, or that
    name a directory.

    Args:
        inputs: what is read, by the name the user knows it by (a CLI flag); None and URIs
            (``scheme://...``) are left out.
        outputs: what is written, likewise.

    Raises:
        DataError: naming both flags.
    """
    def local(named: Mapping[str, str | Path | None]) -> list[tuple[str, Path]]:
        return [(k, Path(v)) for k, v in named.items() if v is not None and "://" not in str(v)]

    outs, ins = local(outputs), local(inputs)
    for name, path in outs:
        if path.is_dir():
            raise DataError(f"{name}: expected a file to write, got a directory", path=path)
        for in_name, in_path in ins:
            if _same_file(path, in_path):
                raise DataError(f"{name} is the {in_name} file: writing it would destroy what is read",
                                path=path)
    for i, (name, path) in enumerate(outs):
        for other, other_path in outs[i + 1:]:
            if _same_file(path, other_path):
                raise DataError(f"{name} and {other} are the same file: one would replace the other",
                                path=path)


def resolved(path: Path) -> Path:
    """``path`` with its directory resolved: ``new/../keep/f`` is ``keep/f``, so that no ``new`` is
    made on the way nor taken for what a run made (the name itself is kept: a link stays a link)."""
    return path.parent.resolve() / path.name


def temp_beside(path: Path) -> Path:
    """A new empty file in ``path``'s directory (created if needed), with the usual permissions.

    Raises:
        DataError: the directory cannot be created or written.
    """
    parent = resolved(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise DataError(f"cannot write here: {exc.strerror or exc}", path=path) from None
    # mkstemp makes the file private (0600); give the result the usual umask-based mode.
    os.fchmod(fd, 0o666 & ~_umask())
    os.close(fd)
    return Path(tmp)


def first_missing(directory: Path) -> Path | None:
    """The outermost directory of ``directory``'s path that does not exist yet (None: it exists):
    what creating it makes, for :func:`remove_empty` to take back."""
    return next((p for p in (*reversed(directory.parents), directory) if not p.exists()), None)


def remove_empty(directory: Path, *, up_to: Path | None) -> None:
    """Remove ``directory`` and its parents up to ``up_to`` (included) while they are empty: what
    a failed run made for its outputs (``up_to`` from :func:`first_missing`; None: nothing)."""
    if up_to is None:
        return
    for d in (directory, *directory.parents):
        try:
            d.rmdir()
        except OSError:  # not empty (someone else's), or gone
            return
        if d == up_to:
            return


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary file lives in the target's directory so the final rename is atomic on POSIX.
    On any error it is removed, with the directories made for it, and ``path`` is left as it was.
    """
    path = resolved(Path(path))
    made = first_missing(path.parent)
    tmp_path = temp_beside(path)
    try:
        try:
            yield tmp_path
            try:
                os.replace(tmp_path, path)
            except OSError as exc:  # a directory of that name, mostly
                raise DataError(f"cannot replace it: {exc.strerror or exc}", path=path) from None
        finally:
            tmp_path.unlink(missing_ok=True)
    except BaseException:
        remove_empty(path.parent, up_to=made)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
