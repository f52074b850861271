"""What a handler gets to know about the request it serves (DESIGN §8 ``broker/context.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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
    principal: str = "User:ANONYMOUS"
    """Kafka principal of the connection (``User:name``); ACL checks use it with client_host."""
    listener_name: str = "PLAINTEXT"
    sasl: Any = None
    """The connection's `streambus.security.sasl.session.SaslSession` on SASL listeners."""
