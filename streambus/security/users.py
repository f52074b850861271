"""SCRAM credentials and the ``users_file``: salted secrets only, never plaintext at rest.

This module owns the credential format (RFC 5802 section 3: salt, iteration count, StoredKey,
ServerKey, the fields of Kafka's ``UserScramCredentialRecord``), deriving it from a password
or from the salted password AlterUserScramCredentials carries (KIP-554), checking a PLAIN
password against it, and reading the operator's ``users_file``. Passwords read from the file are
salted as soon as they are parsed and dropped; nothing here logs or returns them.

``users_file`` format (YAML)::

    users:
      - name: alice
        password: alice-secret          # bootstrap convenience: salted on load
      - name: bob
        scram_sha_512:                  # or scram_sha_256; base64 for the byte fields
          salt: c2FsdA==
          iterations: 8192
          stored_key: ...
          server_key: ...

A password yields both SCRAM-SHA-256 and SCRAM-SHA-512 credentials (and so PLAIN works too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ITERATIONS_DEFAULT",
    "ITERATIONS_MAX",
    "ITERATIONS_MIN",
    "MECHANISM_BY_CODE",
    "MECHANISM_CODES",
    "ScramCredential",
    "UserEntry",
    "UsersFileError",
    "credential_from_password",
    "credential_from_salted_password",
    "load_users_file",
    "verify_password",
]

#: RFC 7677 asks for at least 4096 iterations; Kafka accepts 4096..16384 (ScramMechanism).
ITERATIONS_MIN = 4096
ITERATIONS_MAX = 16384
ITERATIONS_DEFAULT = 8192
SALT_BYTES = 32
USER_COUNT_MAX = 100_000
USER_NAME_LENGTH_MAX = 1024

#: Kafka's ScramMechanism type codes (UserScramCredentialRecord.mechanism, KIP-554).
MECHANISM_CODES: Mapping[str, int] = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MECHANISM_BY_CODE: Mapping[int, str] = {code: name for name, code in MECHANISM_CODES.items()}
_HASH = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
_FILE_KEYS = {"scram_sha_256": "SCRAM-SHA-256", "scram_sha_512": "SCRAM-SHA-512"}


class UsersFileError(ValueError):
    """The users file is unreadable or malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class ScramCredential:
    """One user's salted SCRAM credential for one mechanism (no secret that logs in)."""

    mechanism: str
    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes

    def __repr__(self) -> str:  # keep key material out of logs and tracebacks
        return f"ScramCredential({self.mechanism}, iterations={self.iterations})"


@dataclass(frozen=True, slots=True)
class UserEntry:
    name: str
    credentials: tuple[ScramCredential, ...]


def _keys(mechanism: str, salted_password: bytes) -> tuple[bytes, bytes]:
    digest = _HASH[mechanism]
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    stored_key = hashlib.new(digest, client_key).digest()
    server_key = hmac.new(salted_password, b"Server Key", digest).digest()
    return stored_key, server_key


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802 ``Hi(Normalize(password), salt, i)``; Kafka normalizes to UTF-8 bytes only."""
    return hashlib.pbkdf2_hmac(_HASH[mechanism], password.encode("utf-8"), salt, iterations)


def credential_from_salted_password(mechanism: str, salt: bytes, iterations: int,
                                    salted: bytes) -> ScramCredential:
    """The stored credential for AlterUserScramCredentials' (salt, iterations, salted password)."""
    stored_key, server_key = _keys(mechanism, salted)
    return ScramCredential(mechanism, bytes(salt), iterations, stored_key, server_key)


def credential_from_password(mechanism: str, password: str, *,
                             iterations: int = ITERATIONS_DEFAULT,
                             salt: bytes | None = None) -> ScramCredential:
    """Salt ``password`` for ``mechanism`` (a fresh random salt unless one is given)."""
    if mechanism not in _HASH:
        raise ValueError(f"unknown SCRAM mechanism {mechanism!r}")
    if not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
        raise ValueError(f"iterations must be in {ITERATIONS_MIN}..{ITERATIONS_MAX}")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return credential_from_salted_password(
        mechanism, salt, iterations, salted_password(mechanism, password, salt, iterations))


def verify_password(credential: ScramCredential, password: str) -> bool:
    """True when ``password`` produces ``credential`` (PLAIN against a SCRAM credential)."""
    salted = salted_password(credential.mechanism, password, credential.salt,
                             credential.iterations)
    stored_key, _ = _keys(credential.mechanism, salted)
    return hmac.compare_digest(stored_key, credential.stored_key)


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise UsersFileError(f"{where}: must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise UsersFileError(f"{where}: is not valid base64") from None


def _stored_credential(mechanism: str, value: Any, where: str) -> ScramCredential:
    if not isinstance(value, Mapping):
        raise UsersFileError(f"{where}: must be a mapping with salt, iterations, stored_key, "
                             "server_key")
    unknown = set(value) - {"salt", "iterations", "stored_key", "server_key"}
    if unknown:
        raise UsersFileError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    iterations = value.get("iterations")
    if not isinstance(iterations, int) or not ITERATIONS_MIN <= iterations <= ITERATIONS_MAX:
        raise UsersFileError(f"{where}.iterations: must be an integer in "
                             f"{ITERATIONS_MIN}..{ITERATIONS_MAX}")
    size = hashlib.new(_HASH[mechanism]).digest_size
    keys = {}
    for key in ("stored_key", "server_key"):
        keys[key] = _b64(value.get(key), f"{where}.{key}")
        if len(keys[key]) != size:
            raise UsersFileError(f"{where}.{key}: must be {size} bytes for {mechanism}")
    salt = _b64(value.get("salt"), f"{where}.salt")
    if not salt:
        raise UsersFileError(f"{where}.salt: must not be empty")
    return ScramCredential(mechanism, salt, iterations, keys["stored_key"], keys["server_key"])


ExistingLookup = Callable[[str, str], "ScramCredential | None"]


def _entry(item: Any, index: int, iterations: int, existing: ExistingLookup | None,
           salt: bool = True) -> UserEntry:
    where = f"users[{index}]"
    if not isinstance(item, Mapping):
        raise UsersFileError(f"{where}: must be a mapping with name and password or "
                             "scram_sha_256/scram_sha_512")
    unknown = set(item) - {"name", "password", *_FILE_KEYS}
    if unknown:
        raise UsersFileError(f"{where}: unknown key {sorted(map(str, unknown))[0]!r}")
    name = item.get("name")
    if not isinstance(name, str) or not name or len(name) > USER_NAME_LENGTH_MAX:
        raise UsersFileError(f"{where}.name: must be a non-empty string")
    credentials: dict[str, ScramCredential] = {}
    for key, mechanism in _FILE_KEYS.items():
        if key in item:
            credentials[mechanism] = _stored_credential(mechanism, item[key], f"{where}.{key}")
    password = item.get("password")
    if password is not None:
        if not isinstance(password, str) or not password:
            raise UsersFileError(f"{where}.password: must be a non-empty string")
        if not salt:  # checking the file only: a password is as good as a credential
            return UserEntry(name, tuple(credentials.values()))
        for mechanism in _HASH:
            if mechanism in credentials:
                continue
            # Keep a stored credential the password still matches, so a restart does not
            # re-salt (and rewrite) every user of the file.
            stored = existing(name, mechanism) if existing is not None else None
            if stored is not None and verify_password(stored, password):
                credentials[mechanism] = stored
            else:
                credentials[mechanism] = credential_from_password(mechanism, password,
                                                                  iterations=iterations)
    if not credentials:
        raise UsersFileError(f"{where}: needs a password or scram_sha_256/scram_sha_512")
    return UserEntry(name, tuple(credentials[m] for m in sorted(credentials)))


def parse_users(document: Any, *, iterations: int = ITERATIONS_DEFAULT,
                existing: ExistingLookup | None = None, salt: bool = True) -> list[UserEntry]:
    """Users from a parsed users-file document.

    Raises:
        UsersFileError: naming the first bad entry (never echoing a password).
    """
    if not isinstance(document, Mapping) or set(document) - {"users"}:
        raise UsersFileError("must be a mapping with one key, users")
    items = document.get("users") or []
    if not isinstance(items, list):
        raise UsersFileError("users: must be a list")
    if len(items) > USER_COUNT_MAX:
        raise UsersFileError(f"users: more than {USER_COUNT_MAX} entries")
    entries = [_entry(item, index, iterations, existing, salt)
               for index, item in enumerate(items)]
    seen: set[str] = set()
    for entry in entries:
        if entry.name in seen:
            raise UsersFileError(f"users: {entry.name!r} is listed twice")
        seen.add(entry.name)
    return entries


def check_users_file(path: Path | str) -> str | None:
    """What is wrong with the users file at ``path`` (for ``--validate-config``), or None.

    Checks the structure without salting anything, so it stays fast for large files.
    """
    try:
        load_users_file(path, salt=False)
    except UsersFileError as exc:
        return str(exc)
    return None


def load_users_file(path: Path | str, *, iterations: int = ITERATIONS_DEFAULT,
                    existing: ExistingLookup | None = None,
                    salt: bool = True) -> list[UserEntry]:
    """Read and salt the users file at ``path``.

    ``existing`` looks up stored credentials: a password that still matches one keeps it.

    Raises:
        UsersFileError: unreadable, not YAML, or malformed (the message names the entry).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsersFileError(f"cannot read {path}: {exc}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        # PyYAML's message quotes the offending line, which may hold a password.
        raise UsersFileError(f"{path} is not valid YAML") from None
    try:
        return parse_users(document if document is not None else {}, iterations=iterations,
                           existing=existing, salt=salt)
    except UsersFileError as exc:
        raise UsersFileError(f"{path}: {exc}") from None


def credentials_by_user(entries: Iterable[UserEntry]) -> dict[tuple[str, str], ScramCredential]:
    return {(entry.name, c.mechanism): c for entry in entries for c in entry.credentials}
