"""A small synchronous Kafka client for StreamBus's command-line tools.

Layering: ``connection`` (one blocking socket: framing, correlation ids, ApiVersions
negotiation) -> ``admin`` (version-correct admin requests) -> callers such as
``streambus.cli.admin``. Everything is encoded by ``streambus.protocol``; this package never
depends on a third-party Kafka client and never imports the broker.
"""

from streambus.client.admin import AdminClient as AdminClient
from streambus.client.admin import DeletedTopic as DeletedTopic
from streambus.client.admin import connect_admin as connect_admin
from streambus.client.connection import BrokerConnection as BrokerConnection
from streambus.client.connection import parse_bootstrap_servers as parse_bootstrap_servers
from streambus.client.errors import ClientError as ClientError
from streambus.client.errors import KafkaApiError as KafkaApiError
from streambus.client.errors import KafkaConnectionError as KafkaConnectionError
from streambus.client.errors import KafkaProtocolError as KafkaProtocolError
from streambus.client.errors import KafkaTimeoutError as KafkaTimeoutError
from streambus.client.errors import UnsupportedVersionError as UnsupportedVersionError

__all__ = [
    "AdminClient",
    "BrokerConnection",
    "ClientError",
    "DeletedTopic",
    "KafkaApiError",
    "KafkaConnectionError",
    "KafkaProtocolError",
    "KafkaTimeoutError",
    "UnsupportedVersionError",
    "connect_admin",
    "parse_bootstrap_servers",
]
