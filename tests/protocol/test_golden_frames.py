"""Golden frames: real requests captured from the five clients decode, re-encode byte-exactly,
and read the same in kio.

Goal: prove the codec against bytes no one on this team wrote.  The frames in
``tests/data/frames/<api>_v<version>_<client>.bin`` were captured from confluent-kafka,
kafka-python, aiokafka, kafkajs and kcat talking to a StreamBus broker started with
``STREAMBUS_CAPTURE_FRAMES_DIR`` (``compat-tests/capture_frames.py`` regenerates them).

Method: for each frame, decode the header and body with our codec; check the header names the
API and version in the file name; re-encode the body and require the exact original bytes (so
nothing was dropped or reordered); decode the body with kio and compare field by field.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from streambus.protocol import codec
from streambus.protocol.api_keys import ApiKey
from streambus.protocol.headers import decode_request_header
from test_kio_differential import normalise_kio, normalise_ours

kio_index = pytest.importorskip("kio.index")
kio_serial = pytest.importorskip("kio.serial")

FRAMES_DIR = Path(__file__).resolve().parents[1] / "data" / "frames"
FRAMES = sorted(FRAMES_DIR.glob("*.bin"))
CLIENTS = ("aiokafka", "confluent-kafka", "kafka-python", "kafkajs", "kcat")


def _parse_name(path: Path) -> tuple[ApiKey, int, str]:
    stem = path.stem
    for client in CLIENTS:
        if stem.endswith("_" + client):
            api_part, _, version = stem[: -len(client) - 1].rpartition("_v")
            return ApiKey[api_part.upper()], int(version), client
    raise AssertionError(f"unexpected frame file name {path.name}")


def test_frames_from_every_client_are_present() -> None:
    clients = {_parse_name(path)[2] for path in FRAMES}
    assert clients == set(CLIENTS)
    apis = {_parse_name(path)[0] for path in FRAMES}
    assert {ApiKey.API_VERSIONS, ApiKey.METADATA, ApiKey.PRODUCE, ApiKey.FETCH} <= apis


@pytest.mark.parametrize("path", FRAMES, ids=lambda p: p.stem)
def test_captured_frame_decodes_and_reencodes_exactly(path: Path) -> None:
    api, version, _ = _parse_name(path)
    frame = path.read_bytes()
    header, body_offset = decode_request_header(frame)
    assert (header.api_key, header.api_version) == (api, version)
    request = codec.decode_request(api, version, frame, body_offset)
    assert codec.encode_request(api, version, request) == frame[body_offset:]


@pytest.mark.parametrize("path", FRAMES, ids=lambda p: p.stem)
def test_captured_frame_reads_the_same_in_kio(path: Path) -> None:
    api, version, _ = _parse_name(path)
    frame = path.read_bytes()
    _, body_offset = decode_request_header(frame)
    ours = codec.decode_request(api, version, frame, body_offset)
    kio_cls = kio_index.load_request_schema(api, version)
    theirs, size = kio_serial.entity_reader(kio_cls)(frame[body_offset:], 0)
    assert size == len(frame) - body_offset
    assert normalise_kio(theirs) == normalise_ours(ours, version)
