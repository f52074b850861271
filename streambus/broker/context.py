"""What a handler gets to know about the request it serves (DESIGN §8 ``broker/context.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from streambus.protocol.headers import RequestHeader

if TYPE_CHECKING:
    from streambus.broker.node import BrokerNode

__all__ = ["RequestContext"]


@dataclass(slots=True)
class RequestContext:
    header: RequestHeader
    api_version: int
    client_host: str
    node: "BrokerNode"
    connection_id: int
