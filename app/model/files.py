"""Reading the files a user hands over (models, MLflow folders) without hanging or filling memory.

A model path is read only if it is a regular file (or a folder of them): a FIFO would
block forever, a device never ends, a socket cannot be read. Model files are capped
at :func:`max_model_bytes` (4 GiB unless ``MODELSHIP_MAX_MODEL_GB`` says otherwise),
and are mapped, not read: formats that can be read in parts (zip archives such as
PyTorch and skops files, XGBoost UBJSON, LightGBM text, anything that turns out not to
be a model) touch only the pages they need. Small side files (MLmodel, an input
example, requirements) are read whole, up to a few MiB.
"""

from __future__ import annotations

import mmap
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from app.errors import ModelError
from app.nextstep import raise_size_limit, say

DEFAULT_MAX_MODEL_GB = 4.0
SMALL_FILE_BYTES = 16 << 20  # MLmodel, input examples, requirements.txt


def max_model_bytes() -> int:
    """The largest model file ModelShip reads (``MODELSHIP_MAX_MODEL_GB``, default 4)."""
    try:
        gb = float(os.environ.get("MODELSHIP_MAX_MODEL_GB") or DEFAULT_MAX_MODEL_GB)
    except ValueError:
        gb = DEFAULT_MAX_MODEL_GB
    return int(max(gb, 0.001) * (1 << 30))


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _size(n: int) -> str:
    return f"{n / (1 << 30):.1f} GiB" if n >= 1 << 30 else f"{n / (1 << 20):.1f} MiB"


def missing_file(p: Path) -> ModelError:
    """'churn.jolib does not exist' with the file in that folder it most likely meant."""
    from app.errors import closest

    folder = p.parent if str(p.parent) not in {"", "."} else Path.cwd()
    try:
        nearby = [c.name for c in folder.iterdir() if not c.name.startswith(".")]
    except OSError:
        nearby = []
    guess = closest(p.name, nearby, cutoff=0.8)
    maybe = f" Did you mean {str(folder / guess) if guess and '/' in str(p) else guess!r}?"
    return ModelError(
        f"{p} does not exist.{maybe if guess else ''}", "Check the path and try again."
    )


def check_regular(path: str | Path, limit: int | None = None) -> int:
    """The size of ``path`` if it is a regular file within ``limit`` bytes; else ModelError.

    Never opens the file, so a FIFO cannot block here.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise missing_file(p) from None
    except OSError as exc:
        raise ModelError(
            f"{p} cannot be read ({exc.strerror or exc}).", "Check the path and try again."
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise ModelError(
            f"{p.name} is {_kind(st.st_mode)}, not a file ModelShip can read.",
            "Give the model file itself (a regular file), or an MLflow model folder.",
        )
    if limit is not None and st.st_size > limit:
        raise ModelError(
            f"{p.name} is {_size(st.st_size)}, larger than the {_size(limit)} ModelShip reads "
            "as a model; it was not read.",
            say(
                "Check that this is the model file. If it is, raise the limit, e.g. ",
                raise_size_limit(),
                ".",
            ),
        )
    return st.st_size


def open_regular(path: str | Path) -> int:
    """A read-only descriptor of a regular file (ModelError otherwise), opened so that a
    FIFO cannot block: checked after opening, so nothing can be swapped in between."""
    p = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(p, flags)
    except OSError as exc:
        raise ModelError(
            f"{p.name} cannot be read ({exc.strerror or exc}).", "Check the path and try again."
        ) from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise ModelError(
            f"{p.name} is {_kind(mode)}, not a file ModelShip can read.",
            "Give the model file itself (a regular file), or an MLflow model folder.",
        )
    return fd


@contextmanager
def mapped_model(path: str | Path) -> Iterator[bytes]:
    """The model file's bytes, memory-mapped (typed as bytes: slicing, ``find`` and the
    buffer protocol work; only the pages used are read). Checks as :func:`check_regular`."""
    p = Path(path)
    size = check_regular(p, max_model_bytes())
    if size == 0:
        yield b""
        return
    fd = open_regular(p)
    try:
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:
        os.close(fd)
        raise ModelError(
            f"{p.name} cannot be read ({exc}).", "Check the path and try again."
        ) from None
    os.close(fd)
    try:
        yield mm  # type: ignore[misc]
    finally:
        with suppress(BufferError):  # a view of it is still alive: the GC closes it
            mm.close()


class MappedReader:
    """A read-only, seekable file over mapped bytes (zipfile reads members in place;
    ``mmap`` itself has no ``seekable`` before Python 3.13)."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = (0, self._pos, len(self._data))[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n is None or n < 0 else min(len(self._data), self._pos + n)
        out = self._data[self._pos : end]
        self._pos = max(self._pos, end)
        return bytes(out)


def read_small(path: str | Path, limit: int = SMALL_FILE_BYTES) -> bytes:
    """A small side file's bytes (MLmodel, an input example), refused above ``limit``."""
    p = Path(path)
    check_regular(p, limit)
    fd = open_regular(p)
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ModelError(
            f"{p.name} is larger than {_size(limit)}; it was not read.",
            "Check that the folder holds what MLflow wrote.",
        )
    return data
