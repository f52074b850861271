"""The log cleaner's bounded map from record key to the offset of its latest value.

This module owns the memory bound of compaction (Kafka's ``SkimpyOffsetMap``).  The map
holds at most :attr:`OffsetMap.capacity` keys, derived from ``log.cleaner.dedupe.buffer.size``
and ``log.cleaner.io.buffer.load.factor``; a cleaning pass that fills it stops there and the
next pass continues from that offset.  Pure: no I/O.

Keys of up to 16 bytes are stored as they are; longer keys by their 17-byte BLAKE2b digest
(Kafka stores a 16-byte MD5 of every key), so one entry's memory is bounded whatever the key
size, and a stored short key can never equal a stored digest (the lengths differ).  Two long
keys collide with probability about n**2 / 2**137: never, in practice.
"""

from __future__ import annotations

import hashlib

__all__ = ["OffsetMap", "ENTRY_BYTES", "NO_OFFSET"]

#: Estimated memory of one entry in CPython: a dict slot (~40 bytes with its share of free
#: space), a bytes key of up to 17 bytes (~50) and an int offset (~32).  Kafka's entries are
#: 24 bytes (MD5 + long); Python needs about five times that, so the same setting holds fewer
#: keys but the process stays within it.
ENTRY_BYTES = 128
NO_OFFSET = -1
_SHORT_KEY_BYTES_MAX = 16
_DIGEST_BYTES = 17


def _slot(key: bytes) -> bytes:
    if len(key) <= _SHORT_KEY_BYTES_MAX:
        return key
    return hashlib.blake2b(key, digest_size=_DIGEST_BYTES).digest()


class OffsetMap:
    """Key -> latest offset, holding at most ``capacity`` keys.

    Args:
        memory_bytes: ``log.cleaner.dedupe.buffer.size``.
        load_factor: ``log.cleaner.io.buffer.load.factor``: the share of the buffer filled
            before the map counts as full.
    """

    def __init__(self, memory_bytes: int, load_factor: float = 0.9) -> None:
        if memory_bytes <= 0 or not 0 < load_factor <= 1:
            raise ValueError(f"invalid offset map size {memory_bytes} x {load_factor}")
        self.capacity = max(1, int(memory_bytes * load_factor) // ENTRY_BYTES)
        self._offsets: dict[bytes, int] = {}
        self.latest_offset = NO_OFFSET
        """Largest offset put so far."""

    def __len__(self) -> int:
        return len(self._offsets)

    @property
    def free_count(self) -> int:
        return self.capacity - len(self._offsets)

    def put(self, key: bytes, offset: int) -> None:
        """Record ``offset`` as the latest for ``key``; offsets are put in increasing order.

        Raises:
            OverflowError: the map is full and ``key`` is new (callers check
                :attr:`free_count` first, per batch).
        """
        slot = _slot(key)
        offsets = self._offsets
        if slot not in offsets and len(offsets) >= self.capacity:
            raise OverflowError(f"offset map is full ({self.capacity} keys)")
        offsets[slot] = offset
        if offset > self.latest_offset:
            self.latest_offset = offset

    def get(self, key: bytes) -> int:
        """The latest offset put for ``key``, or :data:`NO_OFFSET`."""
        return self._offsets.get(_slot(key), NO_OFFSET)

    def clear(self) -> None:
        self._offsets.clear()
        self.latest_offset = NO_OFFSET
