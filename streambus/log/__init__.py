"""Partition storage: segments of record batches on disk, their indexes, and recovery.

Layering inside the package: formats (``file_names``, ``offset_index``, ``time_index``) ->
``segment`` (one ``.log`` file and its indexes) -> ``partition_log`` (segments, offsets, roll,
recovery, producer state) -> ``manager`` (the data directory).  This package imports only
``streambus.protocol.records`` from the rest of StreamBus.
"""

from streambus.log.config import LogConfig as LogConfig
from streambus.log.errors import CorruptIndexError as CorruptIndexError
from streambus.log.errors import InconsistentTopicIdError as InconsistentTopicIdError
from streambus.log.errors import LogError as LogError
from streambus.log.errors import OffsetOutOfRangeError as OffsetOutOfRangeError
from streambus.log.errors import RecordTooLargeError as RecordTooLargeError
from streambus.log.errors import UnexpectedAppendOffsetError as UnexpectedAppendOffsetError
from streambus.log.manager import LogManager as LogManager
from streambus.log.partition_log import AppendResult as AppendResult
from streambus.log.partition_log import PartitionLog as PartitionLog
from streambus.log.partition_log import ReadResult as ReadResult
from streambus.log.segment import LogSegment as LogSegment

__all__ = [
    "AppendResult",
    "CorruptIndexError",
    "InconsistentTopicIdError",
    "LogConfig",
    "LogError",
    "LogManager",
    "LogSegment",
    "OffsetOutOfRangeError",
    "PartitionLog",
    "ReadResult",
    "RecordTooLargeError",
    "UnexpectedAppendOffsetError",
]
