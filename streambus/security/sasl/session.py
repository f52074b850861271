"""The SASL state of one connection: Kafka's ``SaslServerAuthenticator`` as a transition table.

Theory of operation. A connection on a SASL_PLAINTEXT or SASL_SSL listener starts in
HANDSHAKE, where only ApiVersions and SaslHandshake are served (KIP-43, KIP-152). SaslHandshake
names a mechanism; an unsupported one is answered with UNSUPPORTED_SASL_MECHANISM and the list
of enabled mechanisms, then the connection closes. A good handshake moves to:

* AUTHENTICATE (SaslHandshake v1): the client sends SaslAuthenticate requests, each carrying
  one token, until the mechanism completes (COMPLETE) or fails (SASL_AUTHENTICATION_FAILED with
  a message, then close). Any other request there is answered with ILLEGAL_SASL_STATE, then
  close.
* RAW_AUTHENTICATE (SaslHandshake v0): tokens arrive as bare size-prefixed blobs, not Kafka
  frames, and are answered the same way; a failure can only close the connection.

COMPLETE serves every request. With ``connections.max.reauth.ms`` > 0 the session has a
lifetime (KIP-368): SaslAuthenticate v1+ tells the client ``session_lifetime_ms``; the client
re-authenticates by sending SaslHandshake (v1) and SaslAuthenticate again on the same
connection (state REAUTHENTICATE, other requests still served), with the same mechanism and
the same user. A request other than SaslHandshake/SaslAuthenticate after the session expired
closes the connection.

Rules: this module never does I/O and never logs; it only says what to answer and whether to
close. Every transition is in `_TRANSITIONS`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from streambus.protocol.api_keys import ApiKey
from streambus.protocol.error_codes import ErrorCode
from streambus.security.sasl.mechanism import (
    CredentialLookup,
    SaslAuthenticationError,
    SaslServer,
    create_server,
)

__all__ = ["AuthenticateResult", "SaslSession", "SaslState"]

#: Bound on SaslAuthenticate round trips per authentication (SCRAM needs 2, PLAIN 1).
ROUND_TRIPS_MAX = 4


class SaslState(enum.Enum):
    HANDSHAKE = "handshake"
    AUTHENTICATE = "authenticate"
    RAW_AUTHENTICATE = "raw_authenticate"
    COMPLETE = "complete"
    REAUTHENTICATE = "reauthenticate"
    FAILED = "failed"


# state -> the API keys served there (anything else: ILLEGAL_SASL_STATE / close).
_ALLOWED: dict[SaslState, frozenset[int]] = {
    SaslState.HANDSHAKE: frozenset({ApiKey.API_VERSIONS, ApiKey.SASL_HANDSHAKE}),
    SaslState.AUTHENTICATE: frozenset({ApiKey.SASL_AUTHENTICATE}),
    SaslState.RAW_AUTHENTICATE: frozenset(),
    SaslState.FAILED: frozenset(),
}

# (state, event) -> next state. Events: handshake_v0, handshake_v1, token_more, token_done,
# failure. Anything missing is ILLEGAL_SASL_STATE.
_TRANSITIONS: dict[tuple[SaslState, str], SaslState] = {
    (SaslState.HANDSHAKE, "handshake_v0"): SaslState.RAW_AUTHENTICATE,
    (SaslState.HANDSHAKE, "handshake_v1"): SaslState.AUTHENTICATE,
    (SaslState.AUTHENTICATE, "token_more"): SaslState.AUTHENTICATE,
    (SaslState.AUTHENTICATE, "token_done"): SaslState.COMPLETE,
    (SaslState.RAW_AUTHENTICATE, "token_more"): SaslState.RAW_AUTHENTICATE,
    (SaslState.RAW_AUTHENTICATE, "token_done"): SaslState.COMPLETE,
    (SaslState.COMPLETE, "handshake_v1"): SaslState.REAUTHENTICATE,
    (SaslState.REAUTHENTICATE, "token_more"): SaslState.REAUTHENTICATE,
    (SaslState.REAUTHENTICATE, "token_done"): SaslState.COMPLETE,
}


@dataclass(frozen=True, slots=True)
class AuthenticateResult:
    error_code: int
    error_message: str | None
    auth_bytes: bytes
    session_lifetime_ms: int


class SaslSession:
    """Authentication state of one connection.

    Args:
        mechanisms: the mechanisms this listener offers, in SaslHandshake's order.
        lookup: credential lookup for the mechanisms.
        reauth_ms: ``connections.max.reauth.ms``; 0 disables session expiry.
        clock_ms: monotonic milliseconds.
        on_failure: called with the `SaslAuthenticationError` of a failed attempt (audit).
        on_success: called with (mechanism, user) after each successful authentication.
    """

    def __init__(self, mechanisms: Sequence[str], lookup: CredentialLookup, *, reauth_ms: int,
                 clock_ms: Callable[[], int],
                 on_failure: Callable[[SaslAuthenticationError], None] | None = None,
                 on_success: Callable[[str, str], None] | None = None) -> None:
        self.mechanisms = tuple(mechanisms)
        self._lookup = lookup
        self.reauth_ms = reauth_ms
        self._clock_ms = clock_ms
        self._on_failure = on_failure
        self._on_success = on_success
        self.state = SaslState.HANDSHAKE
        self.mechanism: str | None = None
        self.user: str | None = None
        #: ``User:<user>`` once authenticated; the connection's principal from then on.
        self.principal: str | None = None
        self.expiry_ms: int | None = None
        #: Set when the answer being sent must be the connection's last.
        self.close_after_response = False
        self._server: SaslServer | None = None
        self._round_trips = 0

    # -- queries ----------------------------------------------------------------------------

    @property
    def authenticated(self) -> bool:
        return self.state in (SaslState.COMPLETE, SaslState.REAUTHENTICATE)

    @property
    def raw_tokens(self) -> bool:
        return self.state is SaslState.RAW_AUTHENTICATE

    def allows(self, api_key: int) -> bool:
        """Whether a request of ``api_key`` may be served now."""
        if self.authenticated:
            if self.expiry_ms is not None and api_key not in (ApiKey.SASL_HANDSHAKE,
                                                               ApiKey.SASL_AUTHENTICATE):
                return self._clock_ms() < self.expiry_ms
            return True
        return api_key in _ALLOWED[self.state]

    # -- events -----------------------------------------------------------------------------

    def receive_handshake(self, mechanism: str, version: int) -> tuple[int, list[str]]:
        """SaslHandshake: (error_code, enabled mechanisms) for the response."""
        enabled = list(self.mechanisms)
        event = "handshake_v0" if version == 0 else "handshake_v1"
        next_state = _TRANSITIONS.get((self.state, event))
        if next_state is None:
            return self._fail_state(), enabled
        if mechanism not in self.mechanisms:
            self.state = SaslState.FAILED if not self.authenticated else self.state
            self.close_after_response = True
            return ErrorCode.UNSUPPORTED_SASL_MECHANISM, enabled
        if next_state is SaslState.REAUTHENTICATE and mechanism != self.mechanism:
            # KIP-368: a re-authentication must use the mechanism of the first one.
            self.close_after_response = True
            return ErrorCode.ILLEGAL_SASL_STATE, enabled
        self.state = next_state
        self.mechanism = mechanism
        self._server = create_server(mechanism, self._lookup)
        self._round_trips = 0
        return ErrorCode.NONE, enabled

    def receive_authenticate(self, token: bytes, version: int) -> AuthenticateResult:
        """SaslAuthenticate: one token in, the response fields out."""
        if self.state not in (SaslState.AUTHENTICATE, SaslState.REAUTHENTICATE):
            self._fail_state()
            return AuthenticateResult(
                ErrorCode.ILLEGAL_SASL_STATE,
                f"Unexpected SaslAuthenticate in SASL state {self.state.value}", b"", 0)
        try:
            answer, done = self._evaluate(token)
        except SaslAuthenticationError as exc:
            return AuthenticateResult(ErrorCode.SASL_AUTHENTICATION_FAILED, str(exc), b"", 0)
        lifetime_ms = 0
        if done:
            lifetime_ms = self._start_session(version)
        return AuthenticateResult(ErrorCode.NONE, None, answer, lifetime_ms)

    def receive_raw_token(self, token: bytes) -> bytes:
        """A bare token after SaslHandshake v0; raises `SaslAuthenticationError` on failure."""
        assert self.state is SaslState.RAW_AUTHENTICATE
        answer, done = self._evaluate(token)
        if done:
            self._start_session(0)
        return answer

    def illegal_request(self, api_key: int) -> str:
        """Another request where only SASL is allowed: the error message; the caller closes."""
        state = self.state.value
        self._fail_state()
        try:
            name = ApiKey(api_key).name
        except ValueError:
            name = str(api_key)
        return f"Unexpected Kafka request of type {name} during SASL {state}"

    # -- internals --------------------------------------------------------------------------

    def _evaluate(self, token: bytes) -> tuple[bytes, bool]:
        assert self._server is not None and self.mechanism is not None
        self._round_trips += 1
        try:
            if self._round_trips > ROUND_TRIPS_MAX:
                raise SaslAuthenticationError(self.mechanism, "too many round trips")
            answer = self._server.evaluate(token)
            if self._server.complete and self.state is SaslState.REAUTHENTICATE \
                    and self._server.user != self.user:
                raise SaslAuthenticationError(
                    self.mechanism, "user changed during re-authentication", self._server.user)
        except SaslAuthenticationError as exc:
            self.state = SaslState.FAILED
            self.close_after_response = True
            if self._on_failure is not None:
                self._on_failure(exc)
            raise
        event = "token_done" if self._server.complete else "token_more"
        self.state = _TRANSITIONS[(self.state, event)]
        return answer, self._server.complete

    def _start_session(self, version: int) -> int:
        assert self._server is not None and self._server.user is not None
        self.user = self._server.user
        self.principal = f"User:{self.user}"
        if self._on_success is not None and self.mechanism is not None:
            self._on_success(self.mechanism, self.user)
        self._server = None
        if self.reauth_ms <= 0:
            self.expiry_ms = None
            return 0
        self.expiry_ms = self._clock_ms() + self.reauth_ms
        # SaslAuthenticate v0 has no field for it; such clients are disconnected at expiry.
        return self.reauth_ms if version >= 1 else 0

    def _fail_state(self) -> int:
        self.state = SaslState.FAILED
        self.close_after_response = True
        return ErrorCode.ILLEGAL_SASL_STATE
