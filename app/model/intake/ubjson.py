"""A UBJSON decoder (XGBoost's binary model format), standard library only."""

from __future__ import annotations

from typing import Any

_UBJ_NUM = {
    b"i": ">b",
    b"U": ">B",
    b"I": ">h",
    b"l": ">i",
    b"L": ">q",
    b"d": ">f",
    b"D": ">d",
}


def ubjson_decode(data: bytes) -> Any:
    """Minimal UBJSON reader for XGBoost model files (typed/counted containers included)."""
    import struct

    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise ValueError("UBJSON ends early")
        out = data[pos : pos + n]
        pos += n
        return out

    def number(marker: bytes) -> Any:
        fmt = _UBJ_NUM[marker]
        return struct.unpack(fmt, take(struct.calcsize(fmt)))[0]

    def length() -> int:
        return int(number(take(1)))

    def value(marker: bytes) -> Any:
        if marker in _UBJ_NUM:
            return number(marker)
        if marker in (b"S", b"H"):
            return take(length()).decode("utf-8")
        if marker == b"C":
            return take(1).decode("latin-1")
        if marker == b"T":
            return True
        if marker == b"F":
            return False
        if marker == b"Z":
            return None
        if marker in (b"[", b"{"):
            return container(marker)
        raise ValueError(f"unknown UBJSON marker {marker!r}")

    def container(open_: bytes) -> Any:
        nonlocal pos
        typ = None
        count = None
        if data[pos : pos + 1] == b"$":
            pos += 1
            typ = take(1)
        if data[pos : pos + 1] == b"#":
            pos += 1
            count = length()
        if open_ == b"[":
            items: list[Any] = []
            if typ in _UBJ_NUM and count is not None:
                import numpy as np

                size = struct.calcsize(_UBJ_NUM[typ])
                arr = np.frombuffer(take(size * count), dtype=_UBJ_NUM[typ])
                return arr.tolist() if count <= 64 else arr
            while count is None or len(items) < count:
                m = take(1)
                if count is None and m == b"]":
                    break
                items.append(value(typ or m) if typ else value(m))
            return items
        obj: dict[str, Any] = {}
        while count is None or len(obj) < count:
            if count is None and data[pos : pos + 1] == b"}":
                pos += 1
                break
            key = take(length()).decode("utf-8")
            obj[key] = value(typ) if typ else value(take(1))
        return obj

    first = take(1)
    return value(first)
