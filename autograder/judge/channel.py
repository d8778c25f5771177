"""The judge's end of the pipe to an evaluator: whole frames in and out, each with a deadline.

The evaluator talks through a ``multiprocessing`` connection, so the frames on the wire are that
connection's: a 4-byte big-endian signed length, or ``-1`` and an 8-byte length, then the bytes.
The student's code shares the evaluator's process and can write to the pipe or stop reading it,
so the judge never blocks on it: every send and every receive has a deadline (a truncated frame
or a full pipe costs the submission its time limit, never the batch), and every wait is sliced
into :data:`~autograder.interrupts.POLL_SECONDS` so that a stopping batch
(:mod:`autograder.interrupts`) is noticed at once.

Receiving is buffered: one ``recv`` takes up to :data:`CHUNK` bytes, so the replies to calls sent
ahead that are already in the pipe cost one system call between them, not three each (peek,
length, body). A frame larger than the chunk is read into its own buffer, never beyond its end.
The socket is non-blocking: bytes already there cost one ``recv`` (a socket timeout would cost a
mode switch and a ``poll`` before it), and only a wait polls, for one slice at a time.
"""

from __future__ import annotations

import math
import os
import select
import socket
import struct
import time
from multiprocessing.connection import Connection

from .. import interrupts

_LENGTH = struct.Struct("!i")
"""A frame's length, as ``multiprocessing`` writes it."""
CHUNK = 64 * 1024
"""Bytes asked of the socket per ``recv`` while frames are small."""


class ChannelClosed(Exception):
    """The evaluator's end is closed (it died), possibly in the middle of a frame."""


class FrameTimeout(Exception):
    """A frame was not sent or received completely before its deadline."""

    def __init__(self, message: str, *, started: bool) -> None:
        super().__init__(message)
        self.started = started
        """Whether part of the frame had already gone through (then the stream is unusable)."""


class FrameTooLarge(Exception):
    """A frame announces more bytes than the judge accepts (or a negative length)."""


class Channel:
    """Frames over the judge's end of a ``multiprocessing`` duplex pipe (a Unix socket pair)."""

    def __init__(self, connection: Connection) -> None:
        """Take over ``connection`` (a duplex ``multiprocessing.Pipe`` end; it is closed)."""
        self._socket = socket.socket(fileno=os.dup(connection.fileno()))
        connection.close()
        self._socket.setblocking(False)
        self._polls: dict[int, select.poll] = {}
        """Event mask -> a poll object watching the socket for it (made on first use)."""
        self._buffer = bytearray()
        """Bytes received and not yet handed out (the start of the next frame(s))."""
        self._eof = False
        """Whether the peer's end of file was read (after the bytes in the buffer)."""

    def _slice(self, deadline: float) -> float:
        """Check for a stop; the seconds left until ``deadline``.

        Raises:
            ChannelClosed: the judge's end was closed (the evaluator was killed).
        """
        interrupts.check()
        if self._socket.fileno() == -1:
            raise ChannelClosed("the judge's end is closed (the evaluator was killed)")
        return deadline - time.monotonic()

    def _wait(self, left: float, *, write: bool = False) -> None:
        """Wait until the socket can be read (or written), at most ``left`` seconds and one
        slice (:data:`~autograder.interrupts.POLL_SECONDS`); nothing if no time is left."""
        if left <= 0:
            return
        events = select.POLLOUT if write else select.POLLIN
        poll = self._polls.get(events)
        if poll is None:
            poll = self._polls[events] = select.poll()
            poll.register(self._socket.fileno(), events)
        poll.poll(math.ceil(min(left, interrupts.POLL_SECONDS) * 1000))

    def readable(self, timeout: float) -> bool:
        """Whether a frame (or an end of file) starts arriving within ``timeout`` seconds."""
        if self._buffer or self._eof:
            return True  # the start of a frame, or the end of file, is already here
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                left = self._slice(deadline)
            except ChannelClosed:
                return True  # the receive reports it
            try:
                self._fill()
            except BlockingIOError:
                if left <= 0:
                    return False
                self._wait(left)
                continue
            except OSError:
                pass  # an error counts as readable: the receive reports it
            return True

    def _fill(self) -> int:
        """One ``recv`` of up to :data:`CHUNK` bytes into the buffer (0 and ``_eof``: end of
        file). Raises what the socket raises."""
        data = self._socket.recv(CHUNK)
        if not data:
            self._eof = True
        self._buffer += data
        return len(data)

    def send(self, data: bytes, *, timeout: float) -> None:
        """Send one frame completely within ``timeout`` seconds.

        Raises:
            FrameTimeout: the evaluator did not take it in time (it stopped reading).
            ChannelClosed: the evaluator's end is gone.
        """
        self.send_all([data], timeout=timeout)

    def send_all(self, frames: list[bytes], *, timeout: float) -> None:
        """Send frames, in order, completely within ``timeout`` seconds; small ones together in
        one system call (the copy costs less than a send each).

        Raises:
            FrameTimeout: the evaluator did not take them in time (it stopped reading).
            ChannelClosed: the evaluator's end is gone.
        """
        parts: list[bytes] = []
        for data in frames:
            if len(data) > 0x7FFFFFFF:
                parts.append(_LENGTH.pack(-1) + struct.pack("!Q", len(data)))
            else:
                parts.append(_LENGTH.pack(len(data)))
            parts.append(data)
        if sum(map(len, parts)) <= CHUNK:
            parts = [b"".join(parts)]
        deadline = time.monotonic() + max(timeout, 0.0)
        sent = 0
        for part in parts:
            view = memoryview(part)
            while view:
                left = self._slice(deadline)
                try:
                    n = self._socket.send(view)
                except BlockingIOError:
                    if left <= 0:
                        raise FrameTimeout(
                            "the evaluator stopped reading: a message was not taken in time",
                            started=sent > 0,
                        ) from None
                    self._wait(left, write=True)
                    continue
                except OSError as exc:
                    raise ChannelClosed(f"the evaluator's end is closed ({exc})") from None
                view = view[n:]
                sent += n

    def receive(self, *, timeout: float, max_bytes: int) -> bytes:
        """Receive one whole frame within ``timeout`` seconds.

        Raises:
            FrameTimeout: the frame did not start, or did not finish, in time.
            ChannelClosed: the evaluator's end closed (before or within the frame).
            FrameTooLarge: the announced length is negative or above ``max_bytes``.
        """
        interrupts.check()  # as when the socket is asked: a stopping batch takes no more frames
        buffer = self._buffer
        if len(buffer) >= 4:  # the common case: the whole (small) frame is here already
            (size,) = _LENGTH.unpack_from(buffer)
            if 0 <= size <= max_bytes and 4 + size <= len(buffer):
                frame = bytes(buffer[4 : 4 + size])
                del buffer[: 4 + size]
                return frame
        deadline = time.monotonic() + max(timeout, 0.0)
        self._buffered(4, deadline)
        (size,) = _LENGTH.unpack_from(self._buffer)
        start = 4
        if size == -1:
            self._buffered(12, deadline)
            (size,) = struct.unpack_from("!Q", self._buffer, 4)
            start = 12
        if size < 0 or size > max_bytes:
            raise FrameTooLarge(f"a frame of {size} bytes (at most {max_bytes})")
        end = start + size
        if end <= len(self._buffer) or end <= CHUNK:
            self._buffered(end, deadline)
            frame = bytes(self._buffer[start:end])
            del self._buffer[:end]
            return frame
        # A large frame: into a buffer of its own, the socket read up to its end and no further.
        body = bytearray(size)
        have = len(self._buffer) - start
        body[:have] = self._buffer[start:]
        self._buffer.clear()
        self._rest(memoryview(body)[have:], deadline)
        return bytes(body)

    def _buffered(self, size: int, deadline: float) -> None:
        """Receive until the buffer holds ``size`` bytes (at most a chunk), by ``deadline``."""
        while len(self._buffer) < size:
            if self._eof:
                raise ChannelClosed("end of file" + (" inside a message" if self._buffer else ""))
            left = self._slice(deadline)
            try:
                self._fill()
            except BlockingIOError:
                if left <= 0:
                    raise FrameTimeout(
                        "an incomplete message: the rest did not come in time"
                        if self._buffer
                        else "no answer in time",
                        started=bool(self._buffer),
                    ) from None
                self._wait(left)
            except OSError as exc:
                raise ChannelClosed(f"the evaluator's end is closed ({exc})") from None

    def _rest(self, view: memoryview, deadline: float) -> None:
        """Fill ``view`` from the socket by ``deadline`` (the rest of a frame that has started)."""
        while view:
            left = self._slice(deadline)
            try:
                n = self._socket.recv_into(view)
            except BlockingIOError:
                if left <= 0:
                    raise FrameTimeout(
                        "an incomplete message: the rest did not come in time",
                        started=True,
                    ) from None
                self._wait(left)
                continue
            except OSError as exc:
                raise ChannelClosed(f"the evaluator's end is closed ({exc})") from None
            if n == 0:
                raise ChannelClosed("end of file inside a message")
            view = view[n:]

    def close(self) -> None:
        """Close the judge's end."""
        self._polls.clear()
        self._socket.close()
