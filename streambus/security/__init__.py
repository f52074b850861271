"""Security: TLS listeners, SASL authentication, ACL authorization and user credentials.

Layering: ``authorizer``, ``users`` and ``sasl`` are pure (no sockets, no asyncio, no
logging of secrets); ``tls`` builds ``ssl.SSLContext`` objects from files; ``audit`` is the one
place denials and failed authentications are logged and counted. The broker shell
(``streambus.broker``) wires them to connections and handlers; nothing here imports the broker.
"""
