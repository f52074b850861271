"""``streambus users ...`` and ``streambus acls ...``, plus the connection security flags.

This module owns the security sub-commands of the admin CLI (``streambus.cli.admin`` wires
them in) and the flags that let every command reach a TLS or SASL listener::

    streambus [--security-protocol P] [--sasl-mechanism M] [--username U]
              [--password-env VAR | --password-file F] [--ssl-cafile F]
              [--ssl-certfile F --ssl-keyfile F] [--no-ssl-check-hostname] ...
        users add NAME (--password-env VAR | --password-file F | --password-stdin)
                       [--mechanism SCRAM-SHA-256|SCRAM-SHA-512|all] [--iterations N]
        users delete NAME [--mechanism ...]
        users list [NAME ...]
        acls add --principal User:NAME --operation OP [--operation OP ...]
                 (--topic T | --group G | --transactional-id T | --cluster)
                 [--prefixed] [--deny] [--host H]
        acls list [--principal P] [--topic T | --group G | ... ] [--prefixed]
        acls remove (same filters as list; at least one)

Passwords never go on the command line (``ps`` shows it to everyone): they come from an
environment variable, a file or stdin. ``users add`` salts the password locally and sends only
the salted password (KIP-554). JSON output: ``users list`` -> ``{"users": [{"name",
"credentials": [{"mechanism", "iterations"}]}]}``; ``acls list``/``acls remove`` ->
``{"acls": [acl...]}`` with acl = ``{"resource_type", "resource_name", "pattern_type",
"principal", "host", "operation", "permission"}``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Callable

from streambus.client.errors import KafkaApiError
from streambus.client.security import SASL_MECHANISMS, SECURITY_PROTOCOLS, ClientSecurity
from streambus.protocol.error_codes import ErrorCode
from streambus.protocol.messages.alter_user_scram_credentials import (
    AlterUserScramCredentialsRequest,
)
from streambus.protocol.messages.create_acls import CreateAclsRequest
from streambus.protocol.messages.delete_acls import DeleteAclsRequest
from streambus.protocol.messages.describe_acls import DescribeAclsRequest
from streambus.security.authorizer import (
    CLUSTER_NAME,
    AclOperation,
    PatternType,
    PermissionType,
    ResourceType,
    normalize_principal,
)
from streambus.security.users import ITERATIONS_MAX, ITERATIONS_MIN, MECHANISM_BY_CODE

__all__ = ["COMMANDS", "add_commands", "add_security_flags", "client_security"]

_SCRAM = ("SCRAM-SHA-256", "SCRAM-SHA-512")
_OPERATIONS = [op.name.lower() for op in AclOperation
               if op not in (AclOperation.UNKNOWN, AclOperation.ANY)]


class UsageError(Exception):
    pass


# -- flags ------------------------------------------------------------------------------------


def add_security_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection security")
    group.add_argument("--security-protocol", type=str.upper, choices=SECURITY_PROTOCOLS,
                       default="PLAINTEXT", help="listener protocol (default PLAINTEXT)")
    group.add_argument("--sasl-mechanism", type=str.upper, choices=SASL_MECHANISMS,
                       default="SCRAM-SHA-512", help="SASL mechanism (default SCRAM-SHA-512)")
    group.add_argument("--username", help="SASL user name")
    group.add_argument("--password-env", metavar="VAR",
                       help="environment variable holding the SASL password "
                            "(default STREAMBUS_PASSWORD)")
    group.add_argument("--password-file", metavar="FILE", help="file holding the SASL password")
    group.add_argument("--ssl-cafile", metavar="FILE", help="CA certificates to trust")
    group.add_argument("--ssl-certfile", metavar="FILE", help="client certificate (mTLS)")
    group.add_argument("--ssl-keyfile", metavar="FILE", help="client key (mTLS)")
    group.add_argument("--no-ssl-check-hostname", dest="ssl_check_hostname",
                       action="store_false", help="do not match the certificate to the host")


def _read_secret(env: str | None, file: str | None, default_env: str | None) -> str | None:
    if file:
        try:
            return Path(file).read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise UsageError(f"cannot read password file: {exc.strerror or exc}") from None
    name = env or default_env
    if name is None:
        return None
    value = os.environ.get(name)
    if value is None and env:
        raise UsageError(f"environment variable {env} is not set")
    return value


def client_security(args: argparse.Namespace) -> ClientSecurity | None:
    """The connection settings from the flags, or None for plain PLAINTEXT."""
    if args.security_protocol == "PLAINTEXT" and not args.username:
        return None
    password = _read_secret(args.password_env, args.password_file, "STREAMBUS_PASSWORD")
    try:
        return ClientSecurity(
            security_protocol=args.security_protocol, sasl_mechanism=args.sasl_mechanism,
            username=args.username, password=password, ssl_cafile=args.ssl_cafile,
            ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
            ssl_check_hostname=args.ssl_check_hostname)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- parsers ----------------------------------------------------------------------------------


def _iterations(text: str) -> int:
    value = int(text)
    if not ITERATIONS_MIN <= value <= ITERATIONS_MAX:
        raise argparse.ArgumentTypeError(f"iterations must be in {ITERATIONS_MIN}..{ITERATIONS_MAX}")
    return value


def _add_resource_flags(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--topic", help="a topic (or prefix with --prefixed; * for all)")
    target.add_argument("--group", help="a consumer group")
    target.add_argument("--transactional-id", help="a transactional id")
    target.add_argument("--cluster", action="store_true", help="the cluster")
    parser.add_argument("--prefixed", action="store_true",
                        help="the name is a prefix (PREFIXED pattern)")


def add_commands(commands: Any, parser_class: type) -> None:
    users = commands.add_parser("users", help="SCRAM users: add, delete, list")
    actions = users.add_subparsers(dest="action", metavar="ACTION", required=True,
                                   parser_class=parser_class)
    add = actions.add_parser("add", help="create a user or change its password")
    add.add_argument("name", metavar="NAME")
    source = add.add_mutually_exclusive_group(required=True)
    source.add_argument("--password-stdin", action="store_true",
                        help="read the new password from the first line of stdin")
    source.add_argument("--new-password-env", metavar="VAR",
                        help="environment variable holding the new password")
    source.add_argument("--new-password-file", metavar="FILE",
                        help="file holding the new password")
    add.add_argument("--mechanism", type=str.upper, choices=(*_SCRAM, "ALL"), default="ALL")
    add.add_argument("--iterations", type=_iterations, default=8192)
    delete = actions.add_parser("delete", help="delete a user's credentials")
    delete.add_argument("name", metavar="NAME")
    delete.add_argument("--mechanism", type=str.upper, choices=(*_SCRAM, "ALL"), default="ALL")
    listing = actions.add_parser("list", help="users and their mechanisms")
    listing.add_argument("names", metavar="NAME", nargs="*")

    acls = commands.add_parser("acls", help="access control lists: add, list, remove")
    actions = acls.add_subparsers(dest="action", metavar="ACTION", required=True,
                                  parser_class=parser_class)
    add = actions.add_parser("add", help="allow (or --deny) operations on a resource")
    add.add_argument("--principal", required=True, help="User:NAME (User:* for everyone)")
    add.add_argument("--operation", dest="operations", action="append", required=True,
                     type=str.lower, choices=_OPERATIONS)
    add.add_argument("--deny", action="store_true", help="a DENY rule (wins over ALLOW)")
    add.add_argument("--host", default="*", help="client address (default * = any)")
    _add_resource_flags(add)
    for name, help_text in (("list", "ACLs matching the filters"),
                            ("remove", "remove the ACLs matching the filters")):
        action = actions.add_parser(name, help=help_text)
        action.add_argument("--principal")
        action.add_argument("--operation", type=str.lower, choices=_OPERATIONS)
        action.add_argument("--host")
        _add_resource_flags(action)


# -- resources --------------------------------------------------------------------------------


def _resource(args: argparse.Namespace) -> tuple[ResourceType, str | None]:
    if args.topic is not None:
        return ResourceType.TOPIC, args.topic
    if args.group is not None:
        return ResourceType.GROUP, args.group
    if args.transactional_id is not None:
        return ResourceType.TRANSACTIONAL_ID, args.transactional_id
    if args.cluster:
        return ResourceType.CLUSTER, CLUSTER_NAME
    return ResourceType.ANY, None


def _acl_json(resource_type: int, resource_name: str, pattern_type: int, principal: str,
              host: str, operation: int, permission: int) -> dict[str, Any]:
    return {"resource_type": ResourceType(resource_type).name,
            "resource_name": resource_name, "pattern_type": PatternType(pattern_type).name,
            "principal": principal, "host": host,
            "operation": AclOperation(operation).name,
            "permission": PermissionType(permission).name}


def _print_acls(out: Any, acls: list[dict[str, Any]], key: str = "acls") -> None:
    from streambus.cli.admin import format_table

    if out.mode == "json":
        out.json({key: acls})
    elif acls:
        columns = ("principal", "host", "operation", "permission", "resource_type",
                   "resource_name", "pattern_type")
        out.text(format_table([c.upper() for c in columns],
                              [[acl[c] for c in columns] for acl in acls]))


# -- commands ---------------------------------------------------------------------------------


def _users_add(admin: Any, args: argparse.Namespace, out: Any) -> int:
    from streambus.client.admin import scram_upsertion

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = _read_secret(args.new_password_env, args.new_password_file, None) or ""
    if not password:
        raise UsageError("the new password is empty")
    mechanisms = _SCRAM if args.mechanism == "ALL" else (args.mechanism,)
    [result] = admin.alter_user_scram_credentials(upsertions=[
        scram_upsertion(args.name, mechanism, password, iterations=args.iterations)
        for mechanism in mechanisms])
    if result.error_code:
        raise KafkaApiError(result.error_code, result.error_message, args.name)
    if out.mode == "json":
        out.json({"name": args.name, "mechanisms": list(mechanisms)})
    else:
        out.text(f"Set {', '.join(mechanisms)} credentials for user {args.name}.")
    return 0


def _users_delete(admin: Any, args: argparse.Namespace, out: Any) -> int:
    from streambus.security.users import MECHANISM_CODES

    if args.mechanism == "ALL":
        described = admin.describe_user_scram_credentials([args.name])
        [result] = described.results or [None]
        if result is None or result.error_code:
            code = result.error_code if result is not None else ErrorCode.RESOURCE_NOT_FOUND
            raise KafkaApiError(code, result.error_message if result else None, args.name)
        codes = [info.mechanism for info in result.credential_infos]
    else:
        codes = [MECHANISM_CODES[args.mechanism]]
    [result] = admin.alter_user_scram_credentials(deletions=[
        AlterUserScramCredentialsRequest.ScramCredentialDeletion(name=args.name, mechanism=code)
        for code in codes])
    if result.error_code:
        raise KafkaApiError(result.error_code, result.error_message, args.name)
    names = [MECHANISM_BY_CODE.get(code, str(code)) for code in codes]
    if out.mode == "json":
        out.json({"name": args.name, "deleted": names})
    else:
        out.text(f"Deleted {', '.join(names)} credentials of user {args.name}.")
    return 0


def _users_list(admin: Any, args: argparse.Namespace, out: Any) -> int:
    from streambus.cli.admin import format_table

    response = admin.describe_user_scram_credentials(args.names or None)
    if response.error_code:
        raise KafkaApiError(response.error_code, response.error_message)
    users, failures = [], []
    for result in response.results:
        if result.error_code:
            failures.append(KafkaApiError(result.error_code, result.error_message, result.user))
            continue
        users.append({"name": result.user, "credentials": [
            {"mechanism": MECHANISM_BY_CODE.get(i.mechanism, str(i.mechanism)),
             "iterations": i.iterations} for i in result.credential_infos]})
    if out.mode == "json":
        out.json({"users": users})
    elif users:
        out.text(format_table(("USER", "MECHANISM", "ITERATIONS"), [
            (user["name"], c["mechanism"], c["iterations"])
            for user in users for c in user["credentials"]]))
    for failure in failures:
        out.error(failure)
    return 1 if failures else 0


def _acls_add(admin: Any, args: argparse.Namespace, out: Any) -> int:
    resource_type, name = _resource(args)
    if resource_type == ResourceType.ANY:
        raise UsageError("name a resource: --topic, --group, --transactional-id or --cluster")
    principal = normalize_principal(args.principal)
    pattern = PatternType.PREFIXED if args.prefixed else PatternType.LITERAL
    permission = PermissionType.DENY if args.deny else PermissionType.ALLOW
    creations = [CreateAclsRequest.AclCreation(
        resource_type=int(resource_type), resource_name=name, resource_pattern_type=int(pattern),
        principal=principal, host=args.host, operation=int(AclOperation[op.upper()]),
        permission_type=int(permission)) for op in dict.fromkeys(args.operations)]
    results = admin.create_acls(creations)
    for result in results:
        if result.error_code:
            raise KafkaApiError(result.error_code, result.error_message)
    acls = [_acl_json(c.resource_type, c.resource_name, c.resource_pattern_type, c.principal,
                      c.host, c.operation, c.permission_type) for c in creations]
    if out.mode == "json":
        out.json({"added": acls})
    else:
        out.text(f"Added {len(acls)} ACL(s).")
    return 0


def _filter_fields(args: argparse.Namespace) -> dict[str, Any]:
    resource_type, name = _resource(args)
    if args.prefixed:
        pattern = PatternType.PREFIXED
    elif name is not None:
        pattern = PatternType.LITERAL
    else:
        pattern = PatternType.ANY
    return dict(
        resource_type_filter=int(resource_type), resource_name_filter=name,
        pattern_type_filter=int(pattern),
        principal_filter=normalize_principal(args.principal) if args.principal else None,
        host_filter=args.host,
        operation=int(AclOperation[args.operation.upper()]) if args.operation
        else int(AclOperation.ANY),
        permission_type=int(PermissionType.ANY))


def _acls_list(admin: Any, args: argparse.Namespace, out: Any) -> int:
    response = admin.describe_acls(DescribeAclsRequest(**_filter_fields(args)))
    if response.error_code:
        raise KafkaApiError(response.error_code, response.error_message)
    acls = [_acl_json(r.resource_type, r.resource_name, r.pattern_type, a.principal, a.host,
                      a.operation, a.permission_type)
            for r in response.resources for a in r.acls]
    _print_acls(out, acls)
    return 0


def _acls_remove(admin: Any, args: argparse.Namespace, out: Any) -> int:
    fields = _filter_fields(args)
    if (fields["resource_type_filter"] == ResourceType.ANY and not args.principal
            and not args.operation and not args.host):
        raise UsageError("give at least one filter (--principal, a resource, --operation, "
                         "--host); removing every ACL needs them spelled out")
    [result] = admin.delete_acls([DeleteAclsRequest.DeleteAclsFilter(**fields)])
    if result.error_code:
        raise KafkaApiError(result.error_code, result.error_message)
    acls = [_acl_json(m.resource_type, m.resource_name, m.pattern_type, m.principal, m.host,
                      m.operation, m.permission_type) for m in result.matching_acls]
    if out.mode == "json":
        out.json({"removed": acls})
    else:
        out.text(f"Removed {len(acls)} ACL(s).")
    return 0


COMMANDS: dict[tuple[str, str], Callable[[Any, argparse.Namespace, Any], int]] = {
    ("users", "add"): _users_add,
    ("users", "delete"): _users_delete,
    ("users", "list"): _users_list,
    ("acls", "add"): _acls_add,
    ("acls", "list"): _acls_list,
    ("acls", "remove"): _acls_remove,
}
