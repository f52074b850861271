"""SASL server mechanisms and the per-connection state machine.

Method: drive PLAIN and SCRAM servers with scramp's client (the reference RFC 5802 client),
then walk `SaslSession` through Kafka's states: handshake v0/v1, unsupported mechanism,
failures that close, ILLEGAL_SASL_STATE, and KIP-368 re-authentication and expiry on a
manual clock.
"""

import pytest
import scramp

from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.security.sasl import SaslAuthenticationError, create_server
from streambus.security.sasl.session import SaslSession, SaslState
from streambus.security.users import credential_from_password

MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
CREDENTIALS = {("alice", m): credential_from_password(m, "alice-secret", iterations=4096)
               for m in ("SCRAM-SHA-256", "SCRAM-SHA-512")}


def lookup(user: str, mechanism: str):
    return CREDENTIALS.get((user, mechanism))


def client_tokens(mechanism: str, user: str, password: str):
    """Generator: yields client tokens, receives server tokens."""
    if mechanism == "PLAIN":
        yield f"\0{user}\0{password}".encode()
        return
    client = scramp.ScramClient([mechanism], user, password)
    server_first = yield client.get_client_first().encode()
    client.set_server_first(server_first.decode())
    server_final = yield client.get_client_final().encode()
    client.set_server_final(server_final.decode())


def run(server, mechanism, user, password) -> None:
    tokens = client_tokens(mechanism, user, password)
    token = next(tokens)
    while True:
        answer = server.evaluate(token)
        try:
            token = tokens.send(answer)
        except StopIteration:
            return


@pytest.mark.parametrize("mechanism", MECHANISMS)
def test_right_password_authenticates(mechanism: str) -> None:
    server = create_server(mechanism, lookup)
    run(server, mechanism, "alice", "alice-secret")
    assert server.complete and server.user == "alice"


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("user, password, reason", [
    ("alice", "wrong", "wrong password"), ("mallory", "alice-secret", "unknown user")])
def test_wrong_password_and_unknown_user_fail_alike(mechanism, user, password, reason) -> None:
    server = create_server(mechanism, lookup)
    with pytest.raises(SaslAuthenticationError) as info:
        run(server, mechanism, user, password)
    assert info.value.reason == reason
    assert str(info.value) == ("Authentication failed during authentication due to invalid "
                               f"credentials with SASL mechanism {mechanism}")


@pytest.mark.parametrize("mechanism", MECHANISMS)
@pytest.mark.parametrize("token", [b"", b"\xff\xfe", b"n,,", b"\0\0", b"x" * 5000,
                                   b"n,,n=alice", b"p=tls-unique,,n=alice,r=abc"])
def test_malformed_tokens_fail_cleanly(mechanism: str, token: bytes) -> None:
    with pytest.raises(SaslAuthenticationError):
        server = create_server(mechanism, lookup)
        server.evaluate(token)
        server.evaluate(token)


class Clock:
    def __init__(self) -> None:
        self.now_ms = 1000

    def __call__(self) -> int:
        return self.now_ms


def session(reauth_ms: int = 0, clock: Clock | None = None) -> SaslSession:
    return SaslSession(MECHANISMS, lookup, reauth_ms=reauth_ms, clock_ms=clock or Clock())


def authenticate(s: SaslSession, mechanism: str = "SCRAM-SHA-256", password="alice-secret",
                 version: int = 1):
    assert s.receive_handshake(mechanism, 1) == (ErrorCode.NONE, list(MECHANISMS))
    tokens = client_tokens(mechanism, "alice", password)
    token = next(tokens)
    while True:
        result = s.receive_authenticate(token, version)
        if result.error_code:
            return result
        try:
            token = tokens.send(result.auth_bytes)
        except StopIteration:
            return result


def test_only_api_versions_and_handshake_before_authentication() -> None:
    s = session()
    assert s.allows(ApiKey.API_VERSIONS) and s.allows(ApiKey.SASL_HANDSHAKE)
    assert not s.allows(ApiKey.METADATA) and not s.allows(ApiKey.SASL_AUTHENTICATE)
    s.receive_handshake("PLAIN", 1)
    assert s.allows(ApiKey.SASL_AUTHENTICATE) and not s.allows(ApiKey.API_VERSIONS)
    assert s.illegal_request(ApiKey.METADATA).startswith("Unexpected Kafka request of type METADATA")
    assert s.state is SaslState.FAILED and s.close_after_response


def test_successful_authentication_serves_everything() -> None:
    s = session()
    result = authenticate(s)
    assert result.error_code == 0 and result.session_lifetime_ms == 0
    assert s.state is SaslState.COMPLETE and s.user == "alice" and not s.close_after_response
    assert s.allows(ApiKey.PRODUCE)


def test_unsupported_mechanism_answers_the_enabled_list_then_closes() -> None:
    s = SaslSession(("SCRAM-SHA-512",), lookup, reauth_ms=0, clock_ms=Clock())
    assert s.receive_handshake("PLAIN", 1) == (ErrorCode.UNSUPPORTED_SASL_MECHANISM,
                                               ["SCRAM-SHA-512"])
    assert s.close_after_response


def test_failed_authentication_answers_the_error_and_closes() -> None:
    failures = []
    s = SaslSession(MECHANISMS, lookup, reauth_ms=0, clock_ms=Clock(),
                    on_failure=failures.append)
    result = authenticate(s, password="nope")
    assert result.error_code == ErrorCode.SASL_AUTHENTICATION_FAILED
    assert "invalid credentials with SASL mechanism SCRAM-SHA-256" in result.error_message
    assert s.state is SaslState.FAILED and s.close_after_response
    assert [f.reason for f in failures] == ["wrong password"]


def test_authenticate_before_handshake_and_second_handshake_are_illegal() -> None:
    s = session()
    assert s.receive_authenticate(b"x", 1).error_code == ErrorCode.ILLEGAL_SASL_STATE
    assert s.close_after_response
    s = session()
    s.receive_handshake("PLAIN", 1)
    assert s.receive_handshake("PLAIN", 1)[0] == ErrorCode.ILLEGAL_SASL_STATE


def test_handshake_v0_switches_to_raw_tokens() -> None:
    s = session()
    s.receive_handshake("PLAIN", 0)
    assert s.raw_tokens
    assert s.receive_raw_token(b"\0alice\0alice-secret") == b""
    assert s.authenticated


def test_reauthentication_extends_the_session_and_keeps_the_user() -> None:
    clock = Clock()
    s = session(reauth_ms=10_000, clock=clock)
    assert authenticate(s).session_lifetime_ms == 10_000
    clock.now_ms += 9_999
    assert s.allows(ApiKey.FETCH)
    clock.now_ms += 1
    assert not s.allows(ApiKey.FETCH)  # expired: the caller closes the connection
    assert s.allows(ApiKey.SASL_HANDSHAKE)
    assert authenticate(s).error_code == 0
    assert s.allows(ApiKey.FETCH) and s.expiry_ms == clock.now_ms + 10_000


def test_reauthentication_must_keep_the_mechanism() -> None:
    s = session(reauth_ms=10_000)
    authenticate(s, "SCRAM-SHA-256")
    assert s.receive_handshake("PLAIN", 1)[0] == ErrorCode.ILLEGAL_SASL_STATE


def test_sasl_authenticate_v0_clients_get_no_lifetime_but_still_expire() -> None:
    clock = Clock()
    s = session(reauth_ms=5_000, clock=clock)
    assert authenticate(s, version=0).session_lifetime_ms == 0
    clock.now_ms += 5_000
    assert not s.allows(ApiKey.PRODUCE)
