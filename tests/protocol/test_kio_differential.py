"""Differential tests against kio, an independent Kafka codec, in both directions.

Goal: our bytes are Kafka's bytes. A round-trip through our own codec cannot
catch a layout mistake made the same way in encoder and decoder; a second,
independently written codec can.

Method: for each API x version that both kio and the specs define, Hypothesis
builds one of our messages (values restricted to what kio can represent: its
error-code enum, non-negative durations and timestamps, finite floats). Then
(1) we encode, kio decodes, and the two object trees must match field by field;
(2) kio re-encodes its object, the bytes must equal ours, and our decoder must
give back the original message. Trees are compared positionally (kio renames a
few fields, e.g. ``throttle_time_ms`` -> ``throttle_time`` as a timedelta), after
normalising kio's representation (tuples, timedelta, datetime, enum, the zero
uuid as None).
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import io
import types
import typing
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streambus.protocol import codec, messages
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.codec import FieldSpec
from streambus.protocol.error_codes import ErrorCode

kio_index = pytest.importorskip("kio.index")
kio_serial = pytest.importorskip("kio.serial")
from kio.schema.errors import ErrorCode as KioErrorCode  # noqa: E402

REQUIRED_APIS = [
    ApiKey.PRODUCE,
    ApiKey.FETCH,
    ApiKey.LIST_OFFSETS,
    ApiKey.METADATA,
    ApiKey.API_VERSIONS,
    ApiKey.CREATE_TOPICS,
    ApiKey.DELETE_TOPICS,
    ApiKey.INIT_PRODUCER_ID,
    ApiKey.FIND_COORDINATOR,
    ApiKey.JOIN_GROUP,
    ApiKey.SYNC_GROUP,
    ApiKey.OFFSET_COMMIT,
    ApiKey.OFFSET_FETCH,
    ApiKey.DESCRIBE_CONFIGS,
    ApiKey.DESCRIBE_CLUSTER,
]
EXTRA_APIS = [
    ApiKey.HEARTBEAT,
    ApiKey.LEAVE_GROUP,
    ApiKey.DESCRIBE_GROUPS,
    ApiKey.LIST_GROUPS,
    ApiKey.SASL_HANDSHAKE,
    ApiKey.SASL_AUTHENTICATE,
    ApiKey.DELETE_RECORDS,
    ApiKey.OFFSET_FOR_LEADER_EPOCH,
    ApiKey.ADD_PARTITIONS_TO_TXN,
    ApiKey.ADD_OFFSETS_TO_TXN,
    ApiKey.END_TXN,
    ApiKey.TXN_OFFSET_COMMIT,
    ApiKey.CREATE_PARTITIONS,
    ApiKey.CONSUMER_GROUP_HEARTBEAT,
    ApiKey.VOTE,
    ApiKey.BEGIN_QUORUM_EPOCH,
    ApiKey.DESCRIBE_QUORUM,
]

_VALID_ERROR_CODES = [0, -1, 1, 3, 6, 35, 133]
_INT_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
}


def _kio_inner(annotation: object) -> type | None:
    """The entity class inside ``X``, ``X | None`` or ``tuple[X, ...]``, if any."""
    if dataclasses.is_dataclass(annotation):
        return annotation  # type: ignore[return-value]
    for arg in typing.get_args(annotation):
        inner = _kio_inner(arg)
        if inner is not None:
            return inner
    return None


def _present(cls: type, version: int) -> list[FieldSpec]:
    return [spec for spec in codec.field_specs(cls) if spec.present(version)]


def _compatible(cls: type, kio_cls: type, version: int) -> bool:
    """True when kio's schema has the same shape as ours for this version."""
    ours = _present(cls, version)
    theirs = dataclasses.fields(kio_cls)
    if len(ours) != len(theirs):
        return False
    for spec, kio_field in zip(ours, theirs):
        inner = _kio_inner(kio_field.type)
        if (spec.struct is None) != (inner is None):
            return False
        if inner is not None and not _compatible(spec.struct, inner, version):
            return False
    return True


def _scalar(spec: FieldSpec, kafka_type: str | None) -> st.SearchStrategy:
    element = spec.element
    if kafka_type == "error_code":
        return st.sampled_from(_VALID_ERROR_CODES)
    if kafka_type in ("timedelta_i32", "timedelta_i64"):
        return st.integers(0, 2**31 - 1)
    if kafka_type == "datetime_i64":
        return st.integers(0, 2**41)
    if element in _INT_BOUNDS:
        return st.integers(*_INT_BOUNDS[element])
    if element == "bool":
        return st.booleans()
    if element == "float64":
        return st.floats(allow_nan=False, allow_infinity=False)
    if element == "string":
        return st.text(max_size=8)
    if element in ("bytes", "records"):
        return st.binary(max_size=16)
    if element == "uuid":
        return st.one_of(st.just(codec.ZERO_UUID), st.uuids())
    raise AssertionError(element)


def message_strategy(cls: type, kio_cls: type, version: int) -> st.SearchStrategy:
    """Our ``cls`` at ``version`` with values kio's ``kio_cls`` can hold."""
    kwargs = {}
    for spec, kio_field in zip(_present(cls, version), dataclasses.fields(kio_cls)):
        inner = _kio_inner(kio_field.type)
        if spec.struct is not None:
            element = message_strategy(spec.struct, inner, version)
        else:
            element = _scalar(spec, kio_field.metadata.get("kafka_type"))
        strategy = st.lists(element, max_size=2) if spec.is_array else element
        if spec.nullable(version):
            strategy = st.one_of(st.none(), strategy)
        kwargs[spec.attr] = strategy
    return st.builds(cls, **kwargs)


def normalise_kio(value: object) -> object:
    if dataclasses.is_dataclass(value):
        return [normalise_kio(getattr(value, f.name)) for f in dataclasses.fields(value)]
    if isinstance(value, tuple):
        return [normalise_kio(v) for v in value]
    if isinstance(value, datetime.timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, datetime.datetime):
        return round(value.timestamp() * 1000)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return value


def normalise_ours(value: object, version: int) -> object:
    if dataclasses.is_dataclass(value):
        return [normalise_ours(getattr(value, spec.attr), version) for spec in _present(type(value), version)]
    if isinstance(value, list):
        return [normalise_ours(v, version) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if value == codec.ZERO_UUID and isinstance(value, uuid.UUID):
        return None  # kio models the zero uuid as None
    return value


def _cases(apis: list[ApiKey]) -> list[typing.Any]:
    cases = []
    for api in apis:
        for kind, table, loader in (
            ("request", messages.REQUESTS, kio_index.load_request_schema),
            ("response", messages.RESPONSES, kio_index.load_response_schema),
        ):
            cls = table[api]
            low, high = cls.VALID_VERSIONS
            for version in range(low, high + 1):
                try:
                    kio_cls = loader(api, version)
                except Exception:  # kio dropped some old versions
                    continue
                cases.append(pytest.param(cls, kio_cls, version, id=f"{cls.__name__}-v{version}"))
    return cases


REQUIRED_CASES = _cases(REQUIRED_APIS)
EXTRA_CASES = _cases(EXTRA_APIS)


def test_required_apis_have_comparable_kio_schemas() -> None:
    """Every required API has at least one request and response version kio shares with us."""
    for api in REQUIRED_APIS:
        names = {p.values[0].__name__ for p in REQUIRED_CASES if p.values[0].API_KEY == api}
        assert len(names) == 2, api


def _check_both_directions(cls: type, kio_cls: type, version: int) -> None:
    reader = kio_serial.entity_reader(kio_cls)
    writer = kio_serial.entity_writer(kio_cls)

    @settings(max_examples=8, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(msg=message_strategy(cls, kio_cls, version))
    def check(msg: object) -> None:
        ours = codec.encode(msg, version)
        # (1) ours -> kio
        theirs, size = reader(ours, 0)
        assert size == len(ours)
        assert normalise_kio(theirs) == normalise_ours(msg, version)
        # (2) kio -> ours
        out = io.BytesIO()
        writer(out, theirs)
        assert out.getvalue() == ours
        assert codec.decode(cls, version, out.getvalue()) == (msg, len(ours))

    check()


@pytest.mark.parametrize(("cls", "kio_cls", "version"), REQUIRED_CASES)
def test_required_apis_match_kio_in_both_directions(cls: type, kio_cls: type, version: int) -> None:
    """Produce, Fetch, Metadata, ... : kio reads our bytes and we read kio's, with equal values."""
    assert _compatible(cls, kio_cls, version), "kio's schema differs from the spec for this version"
    _check_both_directions(cls, kio_cls, version)


@pytest.mark.parametrize(("cls", "kio_cls", "version"), EXTRA_CASES)
def test_more_apis_match_kio_in_both_directions(cls: type, kio_cls: type, version: int) -> None:
    """Group, transaction, SASL and KRaft APIs where kio's schema matches the spec's."""
    if not _compatible(cls, kio_cls, version):
        pytest.skip("kio was generated from a different spec revision for this version")
    _check_both_directions(cls, kio_cls, version)


def test_error_codes_match_kio() -> None:
    """Our ErrorCode names and numbers equal kio's independent list."""
    assert {e.name: int(e) for e in ErrorCode} == {e.name.upper(): e.value for e in KioErrorCode}


def test_module_types_are_plain() -> None:
    """kio entities are dataclasses; guard the assumption the normaliser relies on."""
    assert isinstance(kio_index, types.ModuleType)
    assert dataclasses.is_dataclass(kio_index.load_request_schema(ApiKey.METADATA, 12))
