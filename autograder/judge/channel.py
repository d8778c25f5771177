"""The judge's end of the pipe to an evaluator: whole frames in and out, each with a deadline.

The evaluator talks through a ``multiprocessing`` connection, so the frames on the wire are that
connection's: a 4-byte big-endian signed length, or ``-1`` and an 8-byte length, then the bytes.
The student's code shares the evaluator's process and can write to the pipe or stop reading it,
so the judge never blocks on it: every send and every receive has a deadline (a truncated frame
or a full pipe costs the submission its time limit, never the batch), and every wait is sliced
into :data:`~autograder.interrupts.POLL_SECONDS` so that a stopping batch
(:mod:`autograder.interrupts`) is noticed at once.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from multiprocessing.connection import Connection

from .. import interrupts


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

    def _slice(self, deadline: float) -> float:
        """Check for a stop; set the socket's timeout to the next slice (0: just try once).

        Raises:
            ChannelClosed: the judge's end was closed (the evaluator was killed).
        """
        interrupts.check()
        if self._socket.fileno() == -1:
            raise ChannelClosed("the judge's end is closed (the evaluator was killed)")
        left = deadline - time.monotonic()
        self._socket.settimeout(min(max(left, 0.0), interrupts.POLL_SECONDS))
        return left

    def readable(self, timeout: float) -> bool:
        """Whether a frame (or an end of file) starts arriving within ``timeout`` seconds."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                left = self._slice(deadline)
            except ChannelClosed:
                return True  # the receive reports it
            try:
                self._socket.recv(1, socket.MSG_PEEK)
            except (TimeoutError, BlockingIOError):
                if left <= 0:
                    return False
                continue
            except OSError:
                pass  # an error counts as readable: the receive reports it
            return True

    def send(self, data: bytes, *, timeout: float) -> None:
        """Send one frame completely within ``timeout`` seconds.

        Raises:
            FrameTimeout: the evaluator did not take it in time (it stopped reading).
            ChannelClosed: the evaluator's end is gone.
        """
        if len(data) > 0x7FFFFFFF:
            header = struct.pack("!i", -1) + struct.pack("!Q", len(data))
        else:
            header = struct.pack("!i", len(data))
        deadline = time.monotonic() + max(timeout, 0.0)
        sent = 0
        for part in (header, data):
            view = memoryview(part)
            while view:
                left = self._slice(deadline)
                try:
                    n = self._socket.send(view)
                except (TimeoutError, BlockingIOError):
                    if left <= 0:
                        raise FrameTimeout(
                            "the evaluator stopped reading: a message was not taken in time",
                            started=sent > 0,
                        ) from None
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
        deadline = time.monotonic() + max(timeout, 0.0)
        received = [0]
        (size,) = struct.unpack("!i", self._exactly(4, deadline, received))
        if size == -1:
            (size,) = struct.unpack("!Q", self._exactly(8, deadline, received))
        if size < 0 or size > max_bytes:
            raise FrameTooLarge(f"a frame of {size} bytes (at most {max_bytes})")
        return self._exactly(size, deadline, received)

    def _exactly(self, size: int, deadline: float, received: list[int]) -> bytes:
        """``size`` bytes by ``deadline``; ``received`` counts the frame's bytes so far."""
        buffer = bytearray(size)
        view = memoryview(buffer)
        while view:
            left = self._slice(deadline)
            try:
                n = self._socket.recv_into(view)
            except (TimeoutError, BlockingIOError):
                if left <= 0:
                    raise FrameTimeout(
                        "an incomplete message: the rest did not come in time"
                        if received[0]
                        else "no answer in time",
                        started=received[0] > 0,
                    ) from None
                continue
            except OSError as exc:
                raise ChannelClosed(f"the evaluator's end is closed ({exc})") from None
            if n == 0:
                raise ChannelClosed("end of file" + (" inside a message" if received[0] else ""))
            view = view[n:]
            received[0] += n
        return bytes(buffer)

    def close(self) -> None:
        """Close the judge's end."""
        self._socket.close()
