"""Users file and SCRAM credentials: salted on load, never plaintext, RFC 5802 keys.

Method: load small YAML files, check the credentials verify the right password only, match
what ``scramp`` derives, and that errors name the entry without echoing secrets.
"""

import base64
from pathlib import Path

import pytest
import scramp

from streambus.security.users import (
    ITERATIONS_MIN,
    UsersFileError,
    credential_from_password,
    load_users_file,
    verify_password,
)


def test_password_entries_become_salted_credentials_for_both_mechanisms(tmp_path: Path) -> None:
    path = tmp_path / "users.yaml"
    path.write_text("users:\n  - name: alice\n    password: alice-secret\n")
    [alice] = load_users_file(path)
    assert alice.name == "alice"
    assert [c.mechanism for c in alice.credentials] == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    for credential in alice.credentials:
        assert credential.iterations >= ITERATIONS_MIN
        assert verify_password(credential, "alice-secret")
        assert not verify_password(credential, "alice-secreT")
        assert b"alice-secret" not in credential.salt + credential.stored_key + credential.server_key
        assert "alice-secret" not in repr(credential)


def test_credentials_match_scramp(tmp_path: Path) -> None:
    salt = b"0123456789abcdef"
    credential = credential_from_password("SCRAM-SHA-256", "pw", iterations=4096, salt=salt)
    expected = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info("pw", 4096, salt)
    assert (credential.salt, credential.stored_key, credential.server_key,
            credential.iterations) == expected


def test_salted_entries_are_taken_as_they_are(tmp_path: Path) -> None:
    credential = credential_from_password("SCRAM-SHA-512", "bob-pw", iterations=4096)
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    path = tmp_path / "users.yaml"
    path.write_text(
        "users:\n  - name: bob\n    scram_sha_512:\n"
        f"      salt: {b64(credential.salt)}\n      iterations: 4096\n"
        f"      stored_key: {b64(credential.stored_key)}\n"
        f"      server_key: {b64(credential.server_key)}\n")
    [bob] = load_users_file(path)
    assert bob.credentials == (credential,)


@pytest.mark.parametrize("text, message", [
    ("users:\n  - name: a\n", r"users\[0\]: needs a password"),
    ("users:\n  - name: a\n    password: x\n  - name: a\n    password: y\n", "listed twice"),
    ("users:\n  - name: a\n    pasword: secret123\n", "unknown key 'pasword'"),
    ("users:\n  - name: a\n    scram_sha_256: {salt: AA==, iterations: 100, stored_key: AA==, "
     "server_key: AA==}\n", "iterations"),
    ("people: []\n", "one key, users"),
    ("users: [\n  - password: 'oops-secret\n", "not valid YAML"),
])
def test_bad_files_name_the_problem_without_the_password(tmp_path: Path, text: str,
                                                         message: str) -> None:
    path = tmp_path / "users.yaml"
    path.write_text(text)
    with pytest.raises(UsersFileError, match=message) as info:
        load_users_file(path)
    assert "secret" not in str(info.value)
