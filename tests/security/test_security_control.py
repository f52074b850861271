"""ACL and SCRAM metadata changes: records produced, image applied, validation as Kafka.

Method: run each controller function on an image, apply its records with `apply_records`, and
compare the resulting image (or the per-item errors) with what Kafka's AclControlManager and
ScramControlManager produce.
"""

from streambus.metadata.image import EMPTY_IMAGE, apply_records
from streambus.metadata.security_control import (
    ScramAlteration,
    alter_scram_credentials,
    create_acls,
    delete_acls,
    sync_config_acls,
    sync_users,
)
from streambus.protocol.error_codes import ErrorCode
from streambus.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation as Op,
    PatternType,
    PermissionType,
    ResourceType as Rt,
)
from streambus.security.users import UserEntry, credential_from_password, salted_password, verify_password

READ = AclBinding(Rt.TOPIC, "events", PatternType.LITERAL, "User:a", "*", Op.READ,
                  PermissionType.ALLOW)
WRITE = AclBinding(Rt.TOPIC, "events", PatternType.LITERAL, "User:b", "*", Op.WRITE,
                   PermissionType.ALLOW)


def apply(image, records):
    return apply_records(image, records, image.offset + len(records))


def test_create_then_delete_acls_round_trips_through_records() -> None:
    records, errors = create_acls(EMPTY_IMAGE, [READ, WRITE, READ])
    assert errors == [None, None, None] and len(records) == 2  # the duplicate is a no-op
    image = apply(EMPTY_IMAGE, records)
    assert sorted(image.acls.values(), key=str) == sorted([READ, WRITE], key=str)
    records, matched = delete_acls(image, [AclBindingFilter(principal="User:a")])
    assert matched == [[READ]]
    assert list(apply(image, records).acls.values()) == [WRITE]


def test_invalid_acls_are_refused_per_item() -> None:
    bad = [
        AclBinding(Rt.ANY, "x", PatternType.LITERAL, "User:a", "*", Op.READ, PermissionType.ALLOW),
        AclBinding(Rt.TOPIC, "x", PatternType.MATCH, "User:a", "*", Op.READ, PermissionType.ALLOW),
        AclBinding(Rt.CLUSTER, "c", PatternType.LITERAL, "User:a", "*", Op.ALTER,
                   PermissionType.ALLOW),
        AclBinding(Rt.TOPIC, "x", PatternType.LITERAL, "alice", "*", Op.READ,
                   PermissionType.ALLOW),
    ]
    records, errors = create_acls(EMPTY_IMAGE, bad + [READ])
    assert len(records) == 1
    assert [e.error_code if e else None for e in errors] == [ErrorCode.INVALID_REQUEST] * 4 + [None]


def test_config_acls_sync_adds_and_removes_only_their_own() -> None:
    admin_records, _ = create_acls(EMPTY_IMAGE, [WRITE])
    image = apply(EMPTY_IMAGE, admin_records)
    image = apply(image, sync_config_acls(image, [READ]))
    assert set(image.acls.values()) == {READ, WRITE}
    assert sync_config_acls(image, [READ]) == []  # idempotent across restarts
    image = apply(image, sync_config_acls(image, []))
    assert set(image.acls.values()) == {WRITE}  # the admin-API ACL survives


def test_scram_upsert_and_delete_with_kafka_validation() -> None:
    salt = b"salt-bytes"
    salted = salted_password("SCRAM-SHA-256", "pw", salt, 4096)
    records, errors = alter_scram_credentials(EMPTY_IMAGE, [
        ScramAlteration("carol", 1, 4096, salt, salted),
        ScramAlteration("dave", 1, 100, salt, salted),
        ScramAlteration("erin", 9, 4096, salt, salted),
        ScramAlteration("frank", 1),
        ScramAlteration("gina", 1, 4096, salt, salted), ScramAlteration("gina", 1),
    ])
    assert {user: (e.error_code if e else None) for user, e in errors.items()} == {
        "carol": None, "dave": ErrorCode.UNACCEPTABLE_CREDENTIAL,
        "erin": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "frank": ErrorCode.RESOURCE_NOT_FOUND,
        "gina": ErrorCode.DUPLICATE_RESOURCE}
    image = apply(EMPTY_IMAGE, records)
    credential = image.scram_credentials[("carol", "SCRAM-SHA-256")]
    assert verify_password(credential, "pw") and not verify_password(credential, "pw2")
    records, errors = alter_scram_credentials(image, [ScramAlteration("carol", 1)])
    assert errors == {"carol": None}
    assert apply(image, records).scram_credentials == {}


def test_users_file_sync_writes_only_what_changed() -> None:
    credential = credential_from_password("SCRAM-SHA-512", "pw", iterations=4096)
    entries = [UserEntry("alice", (credential,))]
    image = apply(EMPTY_IMAGE, sync_users(EMPTY_IMAGE, entries))
    assert image.scram_credentials[("alice", "SCRAM-SHA-512")] == credential
    assert sync_users(image, entries) == []
