"""Kafka frame splitting: a 4-byte big-endian size prefix, then that many bytes of request.

Sans-I/O in the h11 style: :meth:`FrameDecoder.receive_data` only buffers and
:meth:`FrameDecoder.next_frame` returns one complete frame or :data:`NEED_DATA`.  This module
owns the size bound (``socket.request.max.bytes``): a prefix that is negative or larger than
``frame_bytes_max`` is the peer's protocol error and the connection must be closed, as Kafka's
``NetworkReceive`` does with ``InvalidReceiveException``.

Frames are handed out as ``memoryview`` slices of a private ``bytearray`` so the broker can
rewrite batch offsets in place without copying a Produce request's records.
"""

from __future__ import annotations

import struct
from typing import Final

from streambus.protocol.errors import RemoteProtocolError

__all__ = ["FrameDecoder", "NEED_DATA", "FRAME_BYTES_MAX_DEFAULT", "FrameTooLargeError"]


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()

#: Kafka's ``socket.request.max.bytes`` default (100 MiB).
FRAME_BYTES_MAX_DEFAULT: Final = 104857600

_SIZE = struct.Struct(">i")


class FrameTooLargeError(RemoteProtocolError):
    """The peer announced a frame that is negative or larger than the configured bound."""


class FrameDecoder:
    """Splits a byte stream into Kafka frames.

    Args:
        frame_bytes_max: the largest frame accepted (exclusive of the 4-byte prefix).
    """

    __slots__ = ("frame_bytes_max", "_buffer", "_start", "_frames_out")

    def __init__(self, frame_bytes_max: int = FRAME_BYTES_MAX_DEFAULT) -> None:
        self.frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._start = 0

    @property
    def buffered_bytes(self) -> int:
        return len(self._buffer) - self._start

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes read from the socket (no parsing happens here)."""
        if self._start and self._start == len(self._buffer):
            # Everything handed out so far was consumed: start a fresh buffer instead of
            # shifting, so memoryviews already returned stay valid and untouched.
            self._buffer = bytearray(data)
            self._start = 0
        else:
            self._buffer += data

    def has_partial_frame(self) -> bool:
        """True when the buffered bytes end inside a frame (a peer that hangs up now has cut a
        request short); complete frames not yet taken do not count."""
        buffer = self._buffer
        position = self._start
        end = len(buffer)
        while position < end:
            if end - position < 4:
                return True
            (size,) = _SIZE.unpack_from(buffer, position)
            if size < 0 or position + 4 + size > end:
                return True
            position += 4 + size
        return False

    def peek_size(self) -> int | None:
        """The size prefix of the next frame, if four bytes are buffered."""
        if len(self._buffer) - self._start < 4:
            return None
        return _SIZE.unpack_from(self._buffer, self._start)[0]

    def next_frame(self) -> memoryview | _NeedData:
        """Return the next complete frame (without its prefix) or NEED_DATA.

        Raises:
            FrameTooLargeError: the size prefix is negative or above ``frame_bytes_max``.
        """
        buffer = self._buffer
        start = self._start
        available = len(buffer) - start
        if available < 4:
            return NEED_DATA
        (size,) = _SIZE.unpack_from(buffer, start)
        if size < 0 or size > self.frame_bytes_max:
            raise FrameTooLargeError(
                f"frame size {size} is outside [0, {self.frame_bytes_max}]"
            )
        end = start + 4 + size
        if len(buffer) < end:
            return NEED_DATA
        if start == 0 and end == len(buffer):
            # The common case: the buffer holds exactly one frame.  Hand the buffer itself
            # over (no copy) and begin a new one for later data.
            self._buffer = bytearray()
            self._start = 0
            return memoryview(buffer)[4:]
        # Several frames (or a partial next one) are buffered: copy this frame out so the
        # shared buffer can be compacted without invalidating what we return.
        frame = bytearray(buffer[start + 4 : end])
        if end == len(buffer):
            self._buffer = bytearray()
            self._start = 0
        elif end > 65536:
            del buffer[:end]
            self._start = 0
        else:
            self._start = end
        return memoryview(frame)
