"""The controller gate around metadata-changing handlers.

Goal: on a single node the gate is invisible (the handler runs as before); when a request
cannot reach an active controller, every error field of the handler's answer says
NOT_CONTROLLER (41), as Kafka fails the whole request with NotControllerException.

Method: call the gate with a stub context whose node has no cluster; rewrite real response
objects and compare whole objects.
"""

from __future__ import annotations

from types import SimpleNamespace

from streambus.broker.cluster import _not_controller, controller_api
from streambus.protocol.messages.create_topics import CreateTopicsResponse
from streambus.protocol.messages.init_producer_id import InitProducerIdResponse


def test_on_a_single_node_the_gate_calls_the_handler_directly() -> None:
    calls = []

    def handle(ctx, request):
        calls.append((ctx, request))
        return "answer"

    ctx = SimpleNamespace(node=SimpleNamespace(cluster=None))
    assert controller_api(handle)(ctx, "request") == "answer"
    assert calls == [(ctx, "request")]


def test_not_controller_marks_every_entry_of_a_response() -> None:
    response = CreateTopicsResponse(topics=[
        CreateTopicsResponse.CreatableTopicResult(name="a", error_code=0),
        CreateTopicsResponse.CreatableTopicResult(name="b", error_code=36,
                                                  error_message="exists")])
    _not_controller(response, "go elsewhere")
    assert [(t.name, t.error_code, t.error_message) for t in response.topics] == [
        ("a", 41, "go elsewhere"), ("b", 41, "go elsewhere")]


def test_not_controller_clears_a_producer_id() -> None:
    response = InitProducerIdResponse(error_code=0, producer_id=7, producer_epoch=0)
    assert _not_controller(response, "x") == InitProducerIdResponse(
        error_code=41, producer_id=-1, producer_epoch=-1)
