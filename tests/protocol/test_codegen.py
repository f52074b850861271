"""The committed generated protocol modules match what the generator makes from the specs.

Goal: a spec update or a hand edit of a generated file cannot go unnoticed, and
the generator's translation rules (names, defaults, version tables) hold.

Method: run the generator in-process against ../shared/kafka-spec and compare
with the files on disk (the same check as ``python -m streambus.protocol.codegen
--check``); then spot-check the generated tables against facts from the Kafka
specs and the README that defines them.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streambus.protocol import api_keys, codegen, messages
from streambus.protocol.api_keys import ApiKey

SPEC_DIR = codegen.default_spec_dir()

requires_specs = pytest.mark.skipif(not SPEC_DIR.is_dir(), reason=f"kafka specs not found at {SPEC_DIR}")


@requires_specs
def test_generated_files_are_current() -> None:
    """--check finds no stale, missing or extra generated file."""
    assert codegen.check(SPEC_DIR) == []
    assert codegen.main(["--check", "--spec-dir", str(SPEC_DIR)]) == 0


@requires_specs
def test_check_reports_a_stale_file(tmp_path: Path) -> None:
    """A generated file that differs from the generator's output is reported as stale."""
    for rel, text in codegen.generate(SPEC_DIR).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert codegen.check(SPEC_DIR, tmp_path) == []
    stale = tmp_path / "streambus/protocol/messages/produce.py"
    stale.write_text(stale.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    (tmp_path / "streambus/protocol/api_keys.py").unlink()
    extra = tmp_path / "streambus/protocol/messages/obsolete.py"
    extra.write_text(codegen.BANNER, encoding="utf-8")
    assert codegen.check(SPEC_DIR, tmp_path) == [
        "missing: streambus/protocol/api_keys.py",
        "stale: streambus/protocol/messages/produce.py",
        "extra: streambus/protocol/messages/obsolete.py",
    ]


@requires_specs
def test_generation_is_deterministic() -> None:
    """Two runs produce identical text (no timestamps, stable ordering)."""
    assert codegen.generate(SPEC_DIR) == codegen.generate(SPEC_DIR)


def test_comments_are_stripped_outside_strings_only() -> None:
    """// and /* */ comments go; the same characters inside JSON strings stay."""
    text = '{"a": "http://x", // trailing\n /* block */ "b": "/* kept */"}'
    assert codegen.strip_comments(text) == '{"a": "http://x", \n  "b": "/* kept */"}'


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("0+", (0, codegen.VERSION_MAX)), ("3-7", (3, 7)), ("5", (5, 5)), ("none", None)],
)
def test_version_ranges_parse(spec: str, expected: tuple[int, int] | None) -> None:
    """Kafka's version range syntax maps to inclusive (low, high) tuples."""
    assert codegen.parse_versions(spec) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("TopicData", "topic_data"),
        ("ThrottleTimeMs", "throttle_time_ms"),
        ("ISRNodes", "isr_nodes"),
        ("ProducerIdStart", "producer_id_start"),
        ("LogStartOffset", "log_start_offset"),
        ("latestSupportedVersion", "latest_supported_version"),
    ],
)
def test_field_names_are_snake_case(name: str, expected: str) -> None:
    """Spec names become snake_case attributes."""
    assert codegen.snake_case(name) == expected


def test_api_key_enum_matches_kafka_numbers() -> None:
    """ApiKey names are the request names in UPPER_SNAKE with Kafka's numbers."""
    assert ApiKey.PRODUCE == 0
    assert ApiKey.FETCH == 1
    assert ApiKey.LIST_OFFSETS == 2
    assert ApiKey.METADATA == 3
    assert ApiKey.API_VERSIONS == 18
    assert ApiKey.CREATE_TOPICS == 19
    assert ApiKey.DESCRIBE_CLUSTER == 60
    assert set(api_keys.VALID_VERSIONS) == set(messages.REQUESTS) == {int(k) for k in ApiKey}
    assert api_keys.VALID_VERSIONS[ApiKey.PRODUCE] == (0, 11)
    assert api_keys.REQUEST_FLEXIBLE_MIN[ApiKey.PRODUCE] == 9
    assert api_keys.RESPONSE_FLEXIBLE_MIN[ApiKey.API_VERSIONS] == 3
    assert api_keys.REQUEST_FLEXIBLE_MIN[ApiKey.SASL_HANDSHAKE] is None


def test_message_classes_carry_version_tables_and_nested_structs() -> None:
    """Messages expose API_KEY/VALID_VERSIONS/FLEXIBLE_MIN and nest their structs by spec type name."""
    produce = messages.ProduceRequest
    assert (produce.API_KEY, produce.VALID_VERSIONS, produce.FLEXIBLE_MIN) == (0, (0, 11), 9)
    assert messages.REQUESTS[0] is produce and messages.RESPONSES[0] is messages.ProduceResponse
    assert produce.TopicProduceData.__qualname__ == "ProduceRequest.TopicProduceData"
    assert messages.ProduceResponse.PartitionProduceResponse.__qualname__.endswith("PartitionProduceResponse")
    assert messages.MetadataResponse.MetadataResponseTopic is not None
    assert messages.FetchResponse.PartitionData is not None


def test_defaults_follow_the_spec_rules() -> None:
    """Spec defaults, then type defaults: null strings, -1 ints, empty lists, zero uuid, nested structs."""
    request = messages.ProduceRequest()
    assert request.transactional_id is None  # "default": "null"
    assert request.topic_data == []
    partition = messages.ProduceResponse.PartitionProduceResponse()
    assert partition.log_append_time_ms == -1  # "default": "-1"
    assert partition.current_leader == messages.ProduceResponse.LeaderIdAndEpoch(leader_id=-1, leader_epoch=-1)
    assert partition.record_errors == []
    topic = messages.MetadataResponse.MetadataResponseTopic()
    assert topic.topic_id == uuid.UUID(int=0)
    assert topic.topic_authorized_operations == -2147483648
    assert messages.MetadataRequest().allow_auto_topic_creation is True  # "default": "true"
    # Two instances never share a mutable default.
    assert messages.ProduceRequest().topic_data is not request.topic_data
