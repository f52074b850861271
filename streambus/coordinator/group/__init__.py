"""The group coordinator: classic (JoinGroup/SyncGroup) and KIP-848 consumer groups, offsets.

Pure: every module here takes time as ``now_ms`` and returns
:class:`~streambus.coordinator.result.CoordinatorResult` values; none imports asyncio, sockets
or the log.  ``coordinator.py`` is the shard (one per ``__consumer_offsets`` partition), the
other modules are its parts.
"""
