"""Errors raised by partition storage.

This module owns the storage error tree; it never decides how an error reaches a client.
Each class binds one :class:`~streambus.protocol.error_codes.ErrorCode` as ``error_code`` (an
``IntEnum``, so it is also the plain int on the wire), which ``broker/errors.error_code_for``
finds by walking ``type(exc).__mro__``.  ``protocol.error_codes`` is pure data, so importing it
keeps the log below the protocol layer.

::

    LogError (KAFKA_STORAGE_ERROR 56)
     +-- OffsetOutOfRangeError (OFFSET_OUT_OF_RANGE 1)
     +-- RecordTooLargeError (MESSAGE_TOO_LARGE 10)
     +-- UnexpectedAppendOffsetError (UNKNOWN_SERVER_ERROR -1)
     +-- InconsistentTopicIdError (INCONSISTENT_TOPIC_ID 103)
     +-- CorruptIndexError (KAFKA_STORAGE_ERROR 56; the log rebuilds the index itself)
"""

from __future__ import annotations

from streambus.protocol.error_codes import ErrorCode

__all__ = [
    "LogError",
    "OffsetOutOfRangeError",
    "RecordTooLargeError",
    "UnexpectedAppendOffsetError",
    "InconsistentTopicIdError",
    "CorruptIndexError",
]


class LogError(Exception):
    """Base of every storage error: the disk or the log's files cannot serve the request."""

    error_code: ErrorCode = ErrorCode.KAFKA_STORAGE_ERROR


class OffsetOutOfRangeError(LogError):
    """A fetch or truncation offset lies outside [log_start_offset, log_end_offset]."""

    error_code = ErrorCode.OFFSET_OUT_OF_RANGE


class RecordTooLargeError(LogError):
    """A batch is larger than the topic's ``max.message.bytes``."""

    error_code = ErrorCode.MESSAGE_TOO_LARGE


class UnexpectedAppendOffsetError(LogError):
    """A follower append starts below the log end offset (replication went wrong)."""

    error_code = ErrorCode.UNKNOWN_SERVER_ERROR  # as Kafka's UnexpectedAppendOffsetException


class InconsistentTopicIdError(LogError):
    """``partition.metadata`` names a different topic id than the one the log was opened with
    (the topic was deleted and recreated while this directory survived)."""

    error_code = ErrorCode.INCONSISTENT_TOPIC_ID


class CorruptIndexError(LogError):
    """An index file fails its sanity check; the log rebuilds it from the segment's batches."""
