"""ACL authorization, as Kafka's ``StandardAuthorizer`` decides it (KIP-11, KIP-290, KIP-801).

This module owns the ACL model (operations, resource types, pattern types, permissions as the
wire codes of Kafka's ``AclOperation``/``ResourceType``/``PatternType``/``AclPermissionType``),
the matching rules and a per-decision cache. It is pure: no I/O, no clock, no logging (callers
audit denials, see ``streambus.security.audit``).

Rules (``StandardAuthorizerData.authorize``):

1. A super user is allowed everything.
2. ACLs whose resource pattern matches the resource are collected: LITERAL with the same name,
   LITERAL ``*`` (the wildcard), and PREFIXED patterns that are a prefix of the name.
3. Of those, an ACL applies when its principal is the caller or ``User:*`` and its host is the
   caller's address or ``*``.
4. A DENY that applies for the operation (or ALL) wins over everything.
5. An ALLOW applies for the operation itself, ALL, or an operation that implies it:
   READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS.
6. No ALLOW: denied, unless no ACL at all matched the resource (any principal), in which case
   ``allow.everyone.if.no.acl.found`` decides.

Hot path: `Authorizer.authorize` is one dict lookup once a (principal, host, operation,
resource) has been decided; the cache is dropped whenever the ACL set changes and is bounded.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "ANONYMOUS",
    "CLUSTER_NAME",
    "AclBinding",
    "AclBindingFilter",
    "AclOperation",
    "Authorizer",
    "PatternType",
    "PermissionType",
    "ResourceType",
    "authorized_operations",
    "binding_id",
    "bindings_from_config",
    "normalize_principal",
]

#: Kafka's principal for unauthenticated connections (KafkaPrincipal.ANONYMOUS).
ANONYMOUS = "User:ANONYMOUS"
#: The one CLUSTER resource name (Kafka's ``Resource.CLUSTER_NAME``).
CLUSTER_NAME = "kafka-cluster"
WILDCARD = "*"
WILDCARD_PRINCIPAL = "User:*"

#: Bound on cached decisions; a broker with more distinct (principal, resource) pairs than this
#: simply recomputes the overflow (still only a few dict lookups per decision).
DECISION_CACHE_ENTRIES_MAX = 100_000


class AclOperation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class PermissionType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


#: An ALLOW for the key also allows each operation in the value (Kafka's AclEntry implied ops).
_IMPLIED_BY: Mapping[AclOperation, frozenset[AclOperation]] = {
    AclOperation.DESCRIBE: frozenset({AclOperation.DESCRIBE, AclOperation.READ,
                                      AclOperation.WRITE, AclOperation.DELETE,
                                      AclOperation.ALTER, AclOperation.ALL}),
    AclOperation.DESCRIBE_CONFIGS: frozenset({AclOperation.DESCRIBE_CONFIGS,
                                              AclOperation.ALTER_CONFIGS, AclOperation.ALL}),
}

#: Operations that make sense per resource type (Kafka's AclEntry.supportedOperations); used
#: for the authorized-operations bit sets of Metadata and DescribeCluster.
SUPPORTED_OPERATIONS: Mapping[ResourceType, tuple[AclOperation, ...]] = {
    ResourceType.TOPIC: (AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE,
                         AclOperation.DESCRIBE, AclOperation.DELETE, AclOperation.ALTER,
                         AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS),
    ResourceType.GROUP: (AclOperation.READ, AclOperation.DESCRIBE, AclOperation.DELETE),
    ResourceType.CLUSTER: (AclOperation.CREATE, AclOperation.CLUSTER_ACTION,
                           AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS,
                           AclOperation.IDEMPOTENT_WRITE, AclOperation.ALTER,
                           AclOperation.DESCRIBE),
    ResourceType.TRANSACTIONAL_ID: (AclOperation.DESCRIBE, AclOperation.WRITE),
    ResourceType.DELEGATION_TOKEN: (AclOperation.DESCRIBE,),
    ResourceType.USER: (AclOperation.CREATE_TOKENS, AclOperation.DESCRIBE_TOKENS),
}


@dataclass(frozen=True, slots=True)
class AclBinding:
    """One ACL: a resource pattern plus an access control entry (Kafka's ``AclBinding``)."""

    resource_type: ResourceType
    resource_name: str
    pattern_type: PatternType
    principal: str
    host: str
    operation: AclOperation
    permission_type: PermissionType

    def describe(self) -> str:
        return (f"{self.permission_type.name} {self.principal} from {self.host} "
                f"{self.operation.name} on {self.resource_type.name}:{self.pattern_type.name}:"
                f"{self.resource_name}")


@dataclass(frozen=True, slots=True)
class AclBindingFilter:
    """DescribeAcls/DeleteAcls filter; None fields match anything (Kafka's ``AclBindingFilter``).

    ``pattern_type`` ANY matches every pattern type with an equal name; MATCH matches the
    patterns that would apply to ``resource_name`` (literal, wildcard and prefixes).
    """

    resource_type: ResourceType = ResourceType.ANY
    resource_name: str | None = None
    pattern_type: PatternType = PatternType.ANY
    principal: str | None = None
    host: str | None = None
    operation: AclOperation = AclOperation.ANY
    permission_type: PermissionType = PermissionType.ANY

    def matches(self, binding: AclBinding) -> bool:
        if self.resource_type != ResourceType.ANY and binding.resource_type != self.resource_type:
            return False
        if not self._matches_pattern(binding):
            return False
        if self.principal is not None and binding.principal != self.principal:
            return False
        if self.host is not None and binding.host != self.host:
            return False
        if self.operation != AclOperation.ANY and binding.operation != self.operation:
            return False
        return (self.permission_type == PermissionType.ANY
                or binding.permission_type == self.permission_type)

    def _matches_pattern(self, binding: AclBinding) -> bool:
        name = self.resource_name
        if self.pattern_type == PatternType.MATCH:
            if name is None:
                return True
            if binding.pattern_type == PatternType.LITERAL:
                return binding.resource_name in (name, WILDCARD)
            return (binding.pattern_type == PatternType.PREFIXED
                    and name.startswith(binding.resource_name))
        if self.pattern_type != PatternType.ANY and binding.pattern_type != self.pattern_type:
            return False
        return name is None or binding.resource_name == name

    def validation_error(self) -> str | None:
        """Why this filter is unusable for DeleteAcls/DescribeAcls, or None."""
        for value, enum_type in ((self.resource_type, ResourceType),
                                 (self.pattern_type, PatternType),
                                 (self.operation, AclOperation),
                                 (self.permission_type, PermissionType)):
            if value == enum_type.UNKNOWN:
                return f"Filter contains UNKNOWN {enum_type.__name__}"
        return None


def binding_id(binding: AclBinding, namespace: uuid.UUID | None = None) -> uuid.UUID:
    """A deterministic id for ``binding`` under ``namespace`` (random ids otherwise)."""
    if namespace is None:
        return uuid.uuid4()
    text = "\x1f".join(str(part) for part in (
        int(binding.resource_type), binding.resource_name, int(binding.pattern_type),
        binding.principal, binding.host, int(binding.operation), int(binding.permission_type)))
    return uuid.uuid5(namespace, text)


def normalize_principal(text: str) -> str:
    """``user:alice`` -> ``User:alice``: Kafka's principal type is case-sensitive ``User``."""
    principal_type, separator, name = text.partition(":")
    if not separator:
        return f"User:{text}"
    if principal_type.lower() == "user":
        principal_type = "User"
    return f"{principal_type}:{name}"


_OPERATION_BY_CONFIG_NAME = {op.name.lower(): op for op in AclOperation
                             if op not in (AclOperation.UNKNOWN, AclOperation.ANY)}
_RESOURCE_BY_CONFIG_NAME = {rt.name.lower(): rt for rt in ResourceType
                            if rt not in (ResourceType.UNKNOWN, ResourceType.ANY)}


def bindings_from_config(entries: Iterable[object]) -> list[AclBinding]:
    """Expand the config file's ``acls:`` entries (already validated by ``AclEntry``).

    ``user:NAME`` becomes ``User:NAME``; each (operation, resource) pair is one binding.
    ``topic:events`` is LITERAL, ``topic:*`` the wildcard, ``topic:events-*`` PREFIXED
    ``events-`` and ``cluster`` the cluster.
    """
    bindings: list[AclBinding] = []
    for entry in entries:
        principal = normalize_principal(entry.principal)  # type: ignore[attr-defined]
        permission = (PermissionType.DENY if entry.permission == "deny"  # type: ignore[attr-defined]
                      else PermissionType.ALLOW)
        for resource in entry.resources:  # type: ignore[attr-defined]
            resource_type_text, _, name = resource.partition(":")
            resource_type = _RESOURCE_BY_CONFIG_NAME[resource_type_text]
            pattern_type = PatternType.LITERAL
            if resource_type == ResourceType.CLUSTER:
                name = CLUSTER_NAME
            elif name != WILDCARD and name.endswith(WILDCARD):
                name, pattern_type = name[:-1], PatternType.PREFIXED
            for operation_text in entry.operations:  # type: ignore[attr-defined]
                bindings.append(AclBinding(
                    resource_type=resource_type, resource_name=name, pattern_type=pattern_type,
                    principal=principal, host=entry.host,  # type: ignore[attr-defined]
                    operation=_OPERATION_BY_CONFIG_NAME[operation_text],
                    permission_type=permission))
    return bindings


class Authorizer:
    """Decides (principal, host, operation, resource) against a set of ACL bindings.

    Args:
        bindings: the ACLs in force.
        super_users: principals (``User:admin``) allowed everything.
        allow_everyone_if_no_acl_found: the decision for a resource no ACL mentions.
    """

    def __init__(self, bindings: Iterable[AclBinding] = (), *, super_users: Iterable[str] = (),
                 allow_everyone_if_no_acl_found: bool = False) -> None:
        self.super_users = frozenset(normalize_principal(p) for p in super_users)
        self.allow_everyone_if_no_acl_found = allow_everyone_if_no_acl_found
        self._cache: dict[tuple, bool] = {}
        self._literal: dict[tuple[ResourceType, str], tuple[AclBinding, ...]] = {}
        self._prefixed: dict[ResourceType, tuple[AclBinding, ...]] = {}
        self._by_type: dict[ResourceType, tuple[AclBinding, ...]] = {}
        self.bindings: tuple[AclBinding, ...] = ()
        self.update(bindings)

    def update(self, bindings: Iterable[AclBinding]) -> None:
        """Replace the ACL set (after a metadata change); forgets every cached decision."""
        literal: dict[tuple[ResourceType, str], list[AclBinding]] = {}
        prefixed: dict[ResourceType, list[AclBinding]] = {}
        by_type: dict[ResourceType, list[AclBinding]] = {}
        unique = tuple(dict.fromkeys(bindings))
        for binding in unique:
            by_type.setdefault(binding.resource_type, []).append(binding)
            if binding.pattern_type == PatternType.PREFIXED:
                prefixed.setdefault(binding.resource_type, []).append(binding)
            else:
                literal.setdefault((binding.resource_type, binding.resource_name),
                                   []).append(binding)
        self.bindings = unique
        self._literal = {key: tuple(value) for key, value in literal.items()}
        self._prefixed = {key: tuple(value) for key, value in prefixed.items()}
        self._by_type = {key: tuple(value) for key, value in by_type.items()}
        self._cache = {}

    def authorize(self, principal: str, host: str, operation: AclOperation,
                  resource_type: ResourceType, resource_name: str) -> bool:
        """True when ``principal`` connected from ``host`` may do ``operation`` on the resource."""
        key = (principal, host, operation, resource_type, resource_name)
        decision = self._cache.get(key)
        if decision is None:
            decision = self._decide(principal, host, operation, resource_type, resource_name)
            if len(self._cache) >= DECISION_CACHE_ENTRIES_MAX:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def authorize_by_resource_type(self, principal: str, host: str, operation: AclOperation,
                                   resource_type: ResourceType) -> bool:
        """True when some resource of ``resource_type`` could allow ``operation`` (KIP-679).

        Kafka's ``authorizeByResourceType``: an applicable ALLOW on any pattern that no
        applicable DENY covers (a literal deny on the same name, a wildcard deny, or a deny on
        a shorter prefix) is enough; so is ``allow.everyone.if.no.acl.found`` with no ACL of
        that type at all. Used for InitProducerId's idempotent-write check.
        """
        if principal in self.super_users:
            return True
        key = (principal, host, operation, resource_type, None)
        decision = self._cache.get(key)
        if decision is not None:
            return decision
        applicable = [b for b in self._by_type.get(resource_type, ())
                      if _applies(b, principal, host)]
        denies = [b for b in applicable if b.permission_type == PermissionType.DENY
                  and b.operation in (operation, AclOperation.ALL)]
        decision = False
        if any(b.pattern_type == PatternType.LITERAL and b.resource_name == WILDCARD
               for b in denies):
            decision = False
        else:
            for allow in applicable:
                if (allow.permission_type != PermissionType.ALLOW
                        or allow.operation not in _allowing(operation)):
                    continue
                if not any(_deny_covers(deny, allow) for deny in denies):
                    decision = True
                    break
            if not decision and not self._by_type.get(resource_type):
                decision = self.allow_everyone_if_no_acl_found
        self._cache[key] = decision
        return decision

    def _decide(self, principal: str, host: str, operation: AclOperation,
                resource_type: ResourceType, resource_name: str) -> bool:
        if principal in self.super_users:
            return True
        matching = list(self._literal.get((resource_type, resource_name), ()))
        if resource_name != WILDCARD:
            matching.extend(self._literal.get((resource_type, WILDCARD), ()))
        for binding in self._prefixed.get(resource_type, ()):
            if resource_name.startswith(binding.resource_name):
                matching.append(binding)
        if not matching:
            return self.allow_everyone_if_no_acl_found
        allowing = _allowing(operation)
        allowed = False
        for binding in matching:
            if not _applies(binding, principal, host):
                continue
            if binding.permission_type == PermissionType.DENY:
                if binding.operation in (operation, AclOperation.ALL):
                    return False
            elif binding.operation in allowing:
                allowed = True
        return allowed


def _allowing(operation: AclOperation) -> frozenset[AclOperation]:
    return _IMPLIED_BY.get(operation) or frozenset({operation, AclOperation.ALL})


def _applies(binding: AclBinding, principal: str, host: str) -> bool:
    return (binding.principal in (principal, WILDCARD_PRINCIPAL)
            and binding.host in (host, WILDCARD))


def _deny_covers(deny: AclBinding, allow: AclBinding) -> bool:
    if deny.pattern_type == PatternType.LITERAL:
        return allow.pattern_type == PatternType.LITERAL and deny.resource_name == allow.resource_name
    # A denied prefix covers every literal or longer prefix that starts with it.
    return allow.resource_name.startswith(deny.resource_name)


def authorized_operations(authorizer: Authorizer | None, principal: str, host: str,
                          resource_type: ResourceType, resource_name: str) -> int:
    """The authorized-operations bit set of Metadata v8+/DescribeCluster (KIP-430)."""
    bits = 0
    for operation in SUPPORTED_OPERATIONS.get(resource_type, ()):
        if authorizer is None or authorizer.authorize(principal, host, operation,
                                                      resource_type, resource_name):
            bits |= 1 << int(operation)
    return bits
