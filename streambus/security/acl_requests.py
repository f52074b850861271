"""Wire <-> model for the ACL APIs: CreateAcls creations and DescribeAcls/DeleteAcls filters.

Unknown codes become an error message rather than an exception, since Kafka answers them
per item (INVALID_REQUEST) instead of failing the whole request.
"""

from __future__ import annotations

from typing import Any

from streambus.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
)

__all__ = ["binding_from_creation", "filter_from_request"]


def _enum(enum_type: Any, value: int) -> Any:
    try:
        return enum_type(value)
    except ValueError:
        return enum_type.UNKNOWN


def binding_from_creation(creation: Any) -> AclBinding:
    """A CreateAcls AclCreation as a binding (unknown codes become UNKNOWN, refused later)."""
    return AclBinding(
        resource_type=_enum(ResourceType, creation.resource_type),
        resource_name=creation.resource_name,
        pattern_type=_enum(PatternType, creation.resource_pattern_type),
        principal=creation.principal, host=creation.host,
        operation=_enum(AclOperation, creation.operation),
        permission_type=_enum(PermissionType, creation.permission_type))


def filter_from_request(item: Any) -> AclBindingFilter | str:
    """A DescribeAcls request or a DeleteAcls filter as a filter, or why it is invalid."""
    acl_filter = AclBindingFilter(
        resource_type=_enum(ResourceType, item.resource_type_filter),
        resource_name=item.resource_name_filter,
        pattern_type=_enum(PatternType, item.pattern_type_filter),
        principal=item.principal_filter, host=item.host_filter,
        operation=_enum(AclOperation, item.operation),
        permission_type=_enum(PermissionType, item.permission_type))
    return acl_filter.validation_error() or acl_filter
