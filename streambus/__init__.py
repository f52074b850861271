"""StreamBus: a Kafka-wire-compatible message broker written in Python.

Layering, bottom to top: ``protocol`` (sans-I/O codecs and record batches) ->
``log`` (partition storage) -> ``raft`` / ``coordinator`` (pure state machines) ->
``broker`` (the asyncio shell that wires them to sockets).  Nothing imports ``broker``.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
