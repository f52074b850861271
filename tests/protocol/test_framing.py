"""FrameDecoder: size-prefixed frames are split exactly, and bad prefixes are refused.

Method: feed byte streams in every chunking and compare the frames handed out with the frames
sent; then feed negative and oversized prefixes and expect FrameTooLargeError.
"""

import struct

import pytest

from streambus.protocol.framing import NEED_DATA, FrameDecoder, FrameTooLargeError


def _frames(payloads: list[bytes]) -> bytes:
    return b"".join(struct.pack(">i", len(p)) + p for p in payloads)


@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 64, 10_000], ids=lambda n: f"chunk{n}")
def test_frames_come_out_whole_and_in_order_for_any_chunking(chunk_size: int) -> None:
    payloads = [b"", b"a", b"hello world", bytes(range(256)) * 3, b"x" * 5000]
    stream = _frames(payloads)
    decoder = FrameDecoder(frame_bytes_max=10_000)
    received = []
    for start in range(0, len(stream), chunk_size):
        decoder.receive_data(stream[start:start + chunk_size])
        while (frame := decoder.next_frame()) is not NEED_DATA:
            received.append(bytes(frame))
    assert received == payloads
    assert decoder.buffered_bytes == 0


def test_frames_stay_valid_after_more_data_arrives() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(_frames([b"first", b"second"]) + b"\x00\x00")
    first = decoder.next_frame()
    decoder.receive_data(b"\x00\x05third")
    second = decoder.next_frame()
    third = decoder.next_frame()
    assert (bytes(first), bytes(second), bytes(third)) == (b"first", b"second", b"third")
    assert decoder.next_frame() is NEED_DATA


def test_frames_are_writable_so_offsets_can_be_rewritten_in_place() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(_frames([b"abcd"]))
    frame = decoder.next_frame()
    frame[0:1] = b"z"
    assert bytes(frame) == b"zbcd"


@pytest.mark.parametrize("size", [-1, -2**31, 1001, 2**31 - 1], ids=str)
def test_negative_or_oversized_prefix_is_refused(size: int) -> None:
    decoder = FrameDecoder(frame_bytes_max=1000)
    decoder.receive_data(struct.pack(">i", size) + b"xx")
    with pytest.raises(FrameTooLargeError):
        decoder.next_frame()


def test_partial_prefix_needs_more_data() -> None:
    decoder = FrameDecoder()
    decoder.receive_data(b"\x00\x00")
    assert decoder.next_frame() is NEED_DATA
    assert decoder.peek_size() is None


def test_partial_frame_is_told_apart_from_complete_unread_frames() -> None:
    decoder = FrameDecoder()
    assert not decoder.has_partial_frame()
    decoder.receive_data(_frames([b"one", b"two"]))
    assert not decoder.has_partial_frame()  # complete, merely not taken yet
    decoder.receive_data(b"\x00\x00\x00\x05ab")
    assert decoder.has_partial_frame()
    decoder.receive_data(b"cde")
    assert not decoder.has_partial_frame()
    decoder.receive_data(b"\x00")
    assert decoder.has_partial_frame()  # a size prefix cut short
