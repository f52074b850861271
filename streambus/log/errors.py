"""Errors raised by partition storage.

This module owns the storage error tree; it never decides how an error reaches a client.
Each class carries ``error_code``, the Kafka protocol error number it maps to, so that
``broker/errors.error_code_for`` can translate by walking ``type(exc).__mro__``.  The numbers
are Kafka's (``Errors.java``) and must stay equal to ``protocol/error_codes.py`` once it exists.

::

    LogError (KAFKA_STORAGE_ERROR 56)
     +-- OffsetOutOfRangeError (OFFSET_OUT_OF_RANGE 1)
     +-- RecordTooLargeError (MESSAGE_TOO_LARGE 10)
     +-- UnexpectedAppendOffsetError (UNKNOWN_SERVER_ERROR -1)
     +-- InconsistentTopicIdError (INCONSISTENT_TOPIC_ID 103)
     +-- CorruptIndexError (KAFKA_STORAGE_ERROR 56; the log rebuilds the index itself)
"""

from __future__ import annotations

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

    error_code: int = 56  # KAFKA_STORAGE_ERROR


class OffsetOutOfRangeError(LogError):
    """A fetch or truncation offset lies outside [log_start_offset, log_end_offset]."""

    error_code = 1  # OFFSET_OUT_OF_RANGE


class RecordTooLargeError(LogError):
    """A batch is larger than the topic's ``max.message.bytes``."""

    error_code = 10  # MESSAGE_TOO_LARGE


class UnexpectedAppendOffsetError(LogError):
    """A follower append starts below the log end offset (replication went wrong)."""

    error_code = -1  # UNKNOWN_SERVER_ERROR, as Kafka's UnexpectedAppendOffsetException


class InconsistentTopicIdError(LogError):
    """``partition.metadata`` names a different topic id than the one the log was opened with
    (the topic was deleted and recreated while this directory survived)."""

    error_code = 103  # INCONSISTENT_TOPIC_ID


class CorruptIndexError(LogError):
    """An index file fails its sanity check; the log rebuilds it from the segment's batches."""
