"""ACL and SCRAM-credential changes as pure functions: (image, request) -> records to append.

This module is Kafka's ``AclControlManager`` and ``ScramControlManager`` in the style of
``streambus.metadata.controller``: each operation validates against the current image and
returns AccessControlEntryRecord / RemoveAccessControlEntryRecord / UserScramCredentialRecord /
RemoveUserScramCredentialRecord objects plus per-item results; the caller commits the records.
Nothing here does I/O.

ACLs from the config file's ``acls:`` list are written with ids derived from their content
under `CONFIG_ACL_NAMESPACE` (uuid5), so a restart recognizes them: `sync_config_acls` adds
the ones the file gained and removes the ones it lost, and never touches ACLs created through
the admin API (random ids).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from streambus.metadata.image import MetadataImage
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.metadata_records import (
    AccessControlEntryRecord,
    RemoveAccessControlEntryRecord,
    RemoveUserScramCredentialRecord,
    UserScramCredentialRecord,
)
from streambus.security.authorizer import (
    CLUSTER_NAME,
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    binding_id,
)
from streambus.security.users import (
    ITERATIONS_MAX,
    ITERATIONS_MIN,
    MECHANISM_BY_CODE,
    MECHANISM_CODES,
    ScramCredential,
    UserEntry,
    credential_from_salted_password,
)

__all__ = [
    "ACL_COUNT_MAX",
    "CONFIG_ACL_NAMESPACE",
    "AclError",
    "ScramAlteration",
    "acl_record",
    "alter_scram_credentials",
    "create_acls",
    "delete_acls",
    "sync_config_acls",
    "sync_users",
]

#: Namespace of the uuid5 ids given to ACLs that come from the config file.
CONFIG_ACL_NAMESPACE = uuid.UUID("5b1f5c62-3c55-4a8e-9d3e-7a1e0c4f6b21")
#: Bound on ACLs in the metadata image; every queue has a limit.
ACL_COUNT_MAX = 100_000


class AclError(Exception):
    def __init__(self, error_code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def acl_record(acl_id: uuid.UUID, binding: AclBinding) -> AccessControlEntryRecord:
    return AccessControlEntryRecord(
        id=acl_id, resource_type=int(binding.resource_type), resource_name=binding.resource_name,
        pattern_type=int(binding.pattern_type), principal=binding.principal, host=binding.host,
        operation=int(binding.operation), permission_type=int(binding.permission_type))


def validate_binding(binding: AclBinding) -> None:
    """Kafka's ``AclControlManager.validateNewAcl``.

    Raises:
        AclError: INVALID_REQUEST naming what is wrong.
    """
    if binding.resource_type in (ResourceType.ANY, ResourceType.UNKNOWN):
        raise AclError(ErrorCode.INVALID_REQUEST, "Invalid resourceType " +
                       binding.resource_type.name)
    if binding.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        raise AclError(ErrorCode.INVALID_REQUEST, "Invalid patternType " +
                       binding.pattern_type.name)
    if binding.operation in (AclOperation.ANY, AclOperation.UNKNOWN):
        raise AclError(ErrorCode.INVALID_REQUEST, "Invalid operation " + binding.operation.name)
    if binding.permission_type in (PermissionType.ANY, PermissionType.UNKNOWN):
        raise AclError(ErrorCode.INVALID_REQUEST, "Invalid permissionType " +
                       binding.permission_type.name)
    if not binding.resource_name:
        raise AclError(ErrorCode.INVALID_REQUEST, "Resource name should not be empty")
    if binding.resource_type == ResourceType.CLUSTER and binding.resource_name != CLUSTER_NAME:
        raise AclError(ErrorCode.INVALID_REQUEST,
                       f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}")
    principal_type, separator, name = binding.principal.partition(":")
    if not separator or not principal_type or not name:
        raise AclError(ErrorCode.INVALID_REQUEST,
                       f"Could not parse principal from `{binding.principal}` "
                       "(no colon is present separating the principal type from the principal "
                       "name)")
    if not binding.host:
        raise AclError(ErrorCode.INVALID_REQUEST, "Invalid null host")


def create_acls(image: MetadataImage, bindings: Sequence[AclBinding | AclError]
                ) -> tuple[list[object], list[AclError | None]]:
    """Records for the valid new bindings, and one result (None = created) per binding.

    A binding that already exists succeeds without a record, as in Kafka.
    """
    existing = set(image.acls.values())
    records: list[object] = []
    results: list[AclError | None] = []
    count = len(image.acls)
    for binding in bindings:
        if isinstance(binding, AclError):
            results.append(binding)
            continue
        try:
            validate_binding(binding)
            if binding not in existing:
                if count >= ACL_COUNT_MAX:
                    raise AclError(ErrorCode.INVALID_REQUEST,
                                   f"The cluster already holds {ACL_COUNT_MAX} ACLs")
                records.append(acl_record(uuid.uuid4(), binding))
                existing.add(binding)
                count += 1
        except AclError as exc:
            results.append(exc)
            continue
        results.append(None)
    return records, results


def delete_acls(image: MetadataImage, filters: Sequence[AclBindingFilter]
                ) -> tuple[list[object], list[list[AclBinding] | AclError]]:
    """Records removing every ACL a filter matches; per filter, the removed bindings."""
    records: list[object] = []
    removed: set[uuid.UUID] = set()
    results: list[list[AclBinding] | AclError] = []
    for acl_filter in filters:
        problem = acl_filter.validation_error()
        if problem is not None:
            results.append(AclError(ErrorCode.INVALID_REQUEST, problem))
            continue
        matched = []
        for acl_id, binding in image.acls.items():
            if acl_filter.matches(binding):
                matched.append(binding)
                if acl_id not in removed:
                    removed.add(acl_id)
                    records.append(RemoveAccessControlEntryRecord(id=acl_id))
        results.append(matched)
    return records, results


def sync_config_acls(image: MetadataImage, bindings: Iterable[AclBinding]) -> list[object]:
    """Records that make the config-file ACLs in the image equal ``bindings``."""
    desired = {binding_id(b, CONFIG_ACL_NAMESPACE): b for b in bindings}
    present = {acl_id for acl_id, b in image.acls.items()
               if binding_id(b, CONFIG_ACL_NAMESPACE) == acl_id}
    records: list[object] = [RemoveAccessControlEntryRecord(id=acl_id)
                             for acl_id in sorted(present - desired.keys())]
    records += [acl_record(acl_id, desired[acl_id])
                for acl_id in sorted(desired.keys() - present)]
    return records


def _scram_record(name: str, credential: ScramCredential) -> UserScramCredentialRecord:
    return UserScramCredentialRecord(
        name=name, mechanism=MECHANISM_CODES[credential.mechanism], salt=credential.salt,
        stored_key=credential.stored_key, server_key=credential.server_key,
        iterations=credential.iterations)


def sync_users(image: MetadataImage, entries: Iterable[UserEntry]) -> list[object]:
    """Records that store the users file's credentials that the image lacks or differs on.

    Users missing from the file are kept: they may have been added through the admin API.
    """
    records: list[object] = []
    for entry in entries:
        for credential in entry.credentials:
            if image.scram_credentials.get((entry.name, credential.mechanism)) != credential:
                records.append(_scram_record(entry.name, credential))
    return records


@dataclass(frozen=True, slots=True)
class ScramAlteration:
    """One AlterUserScramCredentials item: a deletion (no salt) or an upsertion."""

    name: str
    mechanism: int
    iterations: int = 0
    salt: bytes | None = None
    salted_password: bytes | None = None


def _check_alteration(image: MetadataImage, item: ScramAlteration) -> object:
    mechanism = MECHANISM_BY_CODE.get(item.mechanism)
    if mechanism is None:
        raise AclError(ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism")
    if item.salt is None:
        if (item.name, mechanism) not in image.scram_credentials:
            raise AclError(ErrorCode.RESOURCE_NOT_FOUND,
                           "Attempt to delete a user credential that does not exist")
        return RemoveUserScramCredentialRecord(name=item.name, mechanism=item.mechanism)
    if item.iterations < ITERATIONS_MIN:
        raise AclError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations")
    if item.iterations > ITERATIONS_MAX:
        raise AclError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations")
    if not item.salt or not item.salted_password:
        raise AclError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Salt and salted password are required")
    credential = credential_from_salted_password(mechanism, item.salt, item.iterations,
                                                 item.salted_password)
    return _scram_record(item.name, credential)


def alter_scram_credentials(image: MetadataImage, items: Sequence[ScramAlteration]
                            ) -> tuple[list[object], dict[str, AclError | None]]:
    """Kafka's ScramControlManager.alterCredentials: all of a user's changes, or none."""
    by_user: dict[str, list[ScramAlteration]] = {}
    for item in items:
        by_user.setdefault(item.name, []).append(item)
    records: list[object] = []
    results: dict[str, AclError | None] = {}
    for name, alterations in by_user.items():
        try:
            if not name:
                raise AclError(ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty")
            mechanisms = [a.mechanism for a in alterations]
            if len(set(mechanisms)) != len(mechanisms):
                raise AclError(ErrorCode.DUPLICATE_RESOURCE,
                               "A user credential cannot be altered twice in the same request")
            user_records = [_check_alteration(image, item) for item in alterations]
        except AclError as exc:
            results[name] = exc
            continue
        records += user_records
        results[name] = None
    return records, results
