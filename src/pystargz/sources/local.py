"""Range sources for bytes already at hand: a path, an open binary file, a buffer."""

from __future__ import annotations

import os
import threading
from typing import BinaryIO

from pystargz.errors import SourceError
from pystargz.sources.base import check_range


class FileSource:
    """A blob in a local file, read with ``pread`` so threads need no lock."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
            self._size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise SourceError(f"cannot open {self.path!r}: {exc.strerror}") from exc

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self._size, self.path)
        try:
            data = os.pread(self._fd, length, offset)
            while len(data) < length:
                more = os.pread(self._fd, length - len(data), offset + len(data))
                if not more:
                    break
                data += more
        except OSError as exc:
            raise SourceError(f"cannot read {self.path!r} at offset {offset}: {exc.strerror}") from exc
        if len(data) != length:
            raise SourceError(f"{self.path!r} ended at offset {offset + len(data)}; was it truncated?")
        return data

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __repr__(self) -> str:
        return f"FileSource({self.path!r})"


class FileObjectSource:
    """A seekable binary file object; a lock serializes seek + read."""

    def __init__(self, fileobj: BinaryIO) -> None:
        self._file = fileobj
        self._lock = threading.Lock()
        try:
            self._size = fileobj.seek(0, os.SEEK_END)
        except (OSError, ValueError) as exc:
            raise SourceError(f"file object is not seekable: {exc}") from exc

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        check_range(offset, length, self._size, "the file object")
        with self._lock:
            try:
                self._file.seek(offset)
                data = self._file.read(length)
            except (OSError, ValueError) as exc:
                raise SourceError(f"cannot read the file object at offset {offset}: {exc}") from exc
        if len(data) != length:
            raise SourceError(f"the file object ended at offset {offset + len(data)}")
        return bytes(data)


class BytesSource:
    """A blob held in memory."""

    def __init__(self, data: bytes | bytearray | memoryview) -> None:
        self._data = bytes(data)

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        check_range(offset, length, len(self._data), "the buffer")
        return self._data[offset : offset + length]
