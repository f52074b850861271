"""Authorizer: Kafka's StandardAuthorizer decisions, rule by rule.

Method: build small ACL sets and compare whole decisions with what Kafka's
StandardAuthorizerTest expects (deny wins, implied DESCRIBE, wildcard and prefixed patterns,
super users, allow.everyone.if.no.acl.found, authorizeByResourceType).
"""

from types import SimpleNamespace

import pytest

from streambus.security.authorizer import (
    AclBinding,
    AclBindingFilter,
    AclOperation as Op,
    Authorizer,
    PatternType,
    PermissionType,
    ResourceType as Rt,
    authorized_operations,
    bindings_from_config,
    normalize_principal,
)

ALLOW, DENY = PermissionType.ALLOW, PermissionType.DENY


def acl(principal: str, op: Op, name: str = "events", *, rt: Rt = Rt.TOPIC,
        pattern: PatternType = PatternType.LITERAL, permission: PermissionType = ALLOW,
        host: str = "*") -> AclBinding:
    return AclBinding(rt, name, pattern, principal, host, op, permission)


def test_literal_allow_grants_only_that_operation_and_resource() -> None:
    authorizer = Authorizer([acl("User:alice", Op.WRITE)])
    assert authorizer.authorize("User:alice", "10.0.0.1", Op.WRITE, Rt.TOPIC, "events")
    assert not authorizer.authorize("User:alice", "10.0.0.1", Op.READ, Rt.TOPIC, "events")
    assert not authorizer.authorize("User:bob", "10.0.0.1", Op.WRITE, Rt.TOPIC, "events")


def test_read_write_delete_alter_imply_describe_and_alter_configs_implies_describe_configs() -> None:
    for op in (Op.READ, Op.WRITE, Op.DELETE, Op.ALTER):
        assert Authorizer([acl("User:a", op)]).authorize("User:a", "h", Op.DESCRIBE, Rt.TOPIC,
                                                         "events")
    authorizer = Authorizer([acl("User:a", Op.ALTER_CONFIGS)])
    assert authorizer.authorize("User:a", "h", Op.DESCRIBE_CONFIGS, Rt.TOPIC, "events")
    assert not Authorizer([acl("User:a", Op.CREATE)]).authorize("User:a", "h", Op.DESCRIBE,
                                                                Rt.TOPIC, "events")


def test_deny_wins_over_allow_and_all_covers_every_operation() -> None:
    authorizer = Authorizer([acl("User:a", Op.ALL), acl("User:a", Op.WRITE, permission=DENY)])
    assert authorizer.authorize("User:a", "h", Op.READ, Rt.TOPIC, "events")
    assert not authorizer.authorize("User:a", "h", Op.WRITE, Rt.TOPIC, "events")
    # A DENY of DESCRIBE is not implied by denying READ (denies never imply).
    authorizer = Authorizer([acl("User:a", Op.ALL), acl("User:a", Op.READ, permission=DENY)])
    assert authorizer.authorize("User:a", "h", Op.DESCRIBE, Rt.TOPIC, "events")


def test_wildcard_principal_host_and_resource() -> None:
    authorizer = Authorizer([acl("User:*", Op.READ, "*"),
                             acl("User:a", Op.WRITE, host="10.0.0.9")])
    assert authorizer.authorize("User:zed", "h", Op.READ, Rt.TOPIC, "anything")
    assert authorizer.authorize("User:a", "10.0.0.9", Op.WRITE, Rt.TOPIC, "events")
    assert not authorizer.authorize("User:a", "10.0.0.8", Op.WRITE, Rt.TOPIC, "events")


def test_prefixed_pattern_matches_names_that_start_with_it() -> None:
    authorizer = Authorizer([acl("User:a", Op.READ, "logs-", pattern=PatternType.PREFIXED)])
    assert authorizer.authorize("User:a", "h", Op.READ, Rt.TOPIC, "logs-eu")
    assert not authorizer.authorize("User:a", "h", Op.READ, Rt.TOPIC, "log")


def test_no_matching_acl_follows_allow_everyone_if_no_acl_found() -> None:
    # An ACL on another resource does not count: "found" means for this resource.
    bindings = [acl("User:a", Op.READ, "other")]
    assert not Authorizer(bindings).authorize("User:b", "h", Op.READ, Rt.TOPIC, "events")
    assert Authorizer(bindings, allow_everyone_if_no_acl_found=True).authorize(
        "User:b", "h", Op.READ, Rt.TOPIC, "events")
    # But any ACL on the resource (even for someone else) makes it closed.
    assert not Authorizer(bindings, allow_everyone_if_no_acl_found=True).authorize(
        "User:b", "h", Op.READ, Rt.TOPIC, "other")


def test_super_users_bypass_acls_including_denies() -> None:
    authorizer = Authorizer([acl("User:admin", Op.ALL, permission=DENY)],
                            super_users=["admin"])
    assert authorizer.authorize("User:admin", "h", Op.ALTER, Rt.CLUSTER, "kafka-cluster")


def test_update_drops_cached_decisions() -> None:
    authorizer = Authorizer([])
    assert not authorizer.authorize("User:a", "h", Op.READ, Rt.TOPIC, "events")
    authorizer.update([acl("User:a", Op.READ)])
    assert authorizer.authorize("User:a", "h", Op.READ, Rt.TOPIC, "events")


def test_authorize_by_resource_type_allows_when_some_topic_allows_writes() -> None:
    authorizer = Authorizer([acl("User:p", Op.WRITE)])
    assert authorizer.authorize_by_resource_type("User:p", "h", Op.WRITE, Rt.TOPIC)
    assert not authorizer.authorize_by_resource_type("User:c", "h", Op.WRITE, Rt.TOPIC)
    denied = Authorizer([acl("User:p", Op.WRITE), acl("User:p", Op.WRITE, permission=DENY)])
    assert not denied.authorize_by_resource_type("User:p", "h", Op.WRITE, Rt.TOPIC)
    wildcard = Authorizer([acl("User:p", Op.WRITE), acl("User:*", Op.ALL, "*", permission=DENY)])
    assert not wildcard.authorize_by_resource_type("User:p", "h", Op.WRITE, Rt.TOPIC)


def test_authorized_operations_bits() -> None:
    authorizer = Authorizer([acl("User:a", Op.READ)])
    bits = authorized_operations(authorizer, "User:a", "h", Rt.TOPIC, "events")
    assert bits == (1 << Op.READ) | (1 << Op.DESCRIBE)


def test_filters_match_like_kafka_acl_binding_filter() -> None:
    literal = acl("User:a", Op.READ, "events")
    prefixed = acl("User:a", Op.READ, "ev", pattern=PatternType.PREFIXED)
    wildcard = acl("User:a", Op.READ, "*")
    everything = [literal, prefixed, wildcard]
    assert [b for b in everything if AclBindingFilter().matches(b)] == everything
    match = AclBindingFilter(resource_type=Rt.TOPIC, resource_name="events",
                             pattern_type=PatternType.MATCH)
    assert [b for b in everything if match.matches(b)] == everything
    exact = AclBindingFilter(resource_name="events", pattern_type=PatternType.LITERAL)
    assert [b for b in everything if exact.matches(b)] == [literal]
    assert AclBindingFilter(operation=Op.UNKNOWN).validation_error()


def test_seed_config_format_expands_to_bindings() -> None:
    entries = [SimpleNamespace(principal="user:producer-app", operations=("write", "describe"),
                               resources=("topic:events", "topic:logs-*", "cluster"),
                               permission="allow", host="*")]
    bindings = bindings_from_config(entries)
    assert len(bindings) == 6
    assert bindings[0] == acl("User:producer-app", Op.WRITE)
    assert bindings[2] == acl("User:producer-app", Op.WRITE, "logs-", pattern=PatternType.PREFIXED)
    assert bindings[4].resource_type == Rt.CLUSTER and bindings[4].resource_name == "kafka-cluster"
    assert normalize_principal("alice") == "User:alice"


@pytest.mark.parametrize("count", [1, 1000])
def test_cached_decision_is_one_lookup(count: int) -> None:
    authorizer = Authorizer([acl(f"User:u{i}", Op.WRITE, f"t{i}") for i in range(count)])
    assert authorizer.authorize("User:u0", "h", Op.WRITE, Rt.TOPIC, "t0")
    assert len(authorizer._cache) == 1
    assert authorizer.authorize("User:u0", "h", Op.WRITE, Rt.TOPIC, "t0")
    assert len(authorizer._cache) == 1
