"""Output streams whose write errors name what could not be written.

A full disk or an I/O error while writing must give one line naming the file
("standard output" for stdout) and exit 1, not a traceback or Python's
"Exception ignored" at shutdown.  :class:`OutputFile` (for ``-o FILE``) keeps
its own buffer so a failed write leaves nothing pending; :class:`GuardedStdout`
wraps ``sys.stdout`` for the whole run, and :func:`silence_stdout` points file
descriptor 1 at /dev/null so the interpreter's final flush cannot fail again.
``BrokenPipeError`` is not converted: the CLI turns it into a quiet exit.
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

STDOUT_NAME = "standard output"


class OutputError(Exception):
    """Writing an output failed; ``str()`` is the one-line message for the user."""

    def __init__(self, name: str, exc: OSError | str) -> None:
        why = exc if isinstance(exc, str) else (exc.strerror or str(exc))
        super().__init__(f"cannot write {name}: {why}")
        self.name = name


def silence_stdout() -> None:
    """Point fd 1 at /dev/null: buffered output is dropped instead of failing at exit."""
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else 1
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, fd)
        os.close(devnull)
    except (OSError, ValueError):
        pass


class OutputFile:
    """A text file for ``-o FILE``: UTF-8, no newline translation, buffered here."""

    BUFFER = 1 << 16

    def __init__(self, path: str) -> None:
        self.name = path
        try:
            self._raw = open(path, "wb", buffering=0)  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise OutputError(path, exc) from None
        self._text: list[str] = []
        """Text written since the last bytes (encoded into ``_parts`` on the next)."""
        self._parts: list[bytes] = []
        self._size = 0
        self.closed = False

    def write(self, text: str) -> int:
        self._text.append(text)
        self._size += len(text)
        if self._size >= self.BUFFER:
            self.flush()
        return len(text)

    def write_bytes(self, data: bytes) -> None:
        """Already-encoded UTF-8 (the JSON Lines writer's lines), in order with the text."""
        if self._text:
            self._encode_text()
        self._parts.append(data)
        self._size += len(data)
        if self._size >= self.BUFFER:
            self.flush()

    def _encode_text(self) -> None:
        self._parts.append("".join(self._text).encode("utf-8", "surrogateescape"))
        self._text = []

    def flush(self) -> None:
        if self._text:
            self._encode_text()
        if not self._parts:
            return
        data = memoryview(b"".join(self._parts))
        self._parts, self._size = [], 0
        try:
            while data:
                n = self._raw.write(data)
                data = data[n or 0:]
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise OutputError(self.name, exc) from None

    def isatty(self) -> bool:
        return False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()
        finally:
            try:
                self._raw.close()
            except OSError as exc:
                raise OutputError(self.name, exc) from None

    def __enter__(self) -> OutputFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class GuardedStdout:
    """A proxy for ``sys.stdout`` turning write errors into :class:`OutputError`."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._text_pending = False
        """Text written since the last :meth:`write_bytes` (flushed before bytes)."""
        encoding = getattr(stream, "encoding", None) or ""
        direct = encoding.replace("-", "").lower() == "utf8" and os.linesep == "\n" \
            and not getattr(stream, "line_buffering", False)
        self._buffer: IO[bytes] | None = getattr(stream, "buffer", None) if direct else None
        """The byte stream under a UTF-8 text stream that writes "\\n" as it is and is
        not line-buffered (a terminal: lines must show as they come); None: bytes
        go through the text stream."""

    def write(self, text: str) -> int:
        self._text_pending = True
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as exc:
            silence_stdout()
            raise OutputError(STDOUT_NAME, exc) from None

    def write_bytes(self, data: bytes) -> None:
        """UTF-8 bytes, straight to the byte stream under a UTF-8 stdout (no
        decode and re-encode), in order with the text written before."""
        if self._buffer is None:
            self.write(data.decode())
            return
        try:
            if self._text_pending:
                self._text_pending = False
                self._stream.flush()
            self._buffer.write(data)
        except BrokenPipeError:
            raise
        except OSError as exc:
            silence_stdout()
            raise OutputError(STDOUT_NAME, exc) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            silence_stdout()
            raise OutputError(STDOUT_NAME, exc) from None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def open_output(path: str | None) -> IO[str]:
    """``-o FILE`` (an :class:`OutputFile`) or standard output when ``path`` is None."""
    if path is None or path == "-":
        return sys.stdout
    return OutputFile(path)  # type: ignore[return-value]  # a text stream for the writers


def close_output(stream: IO[str]) -> None:
    if stream is sys.stdout:
        stream.flush()
    else:
        stream.close()
