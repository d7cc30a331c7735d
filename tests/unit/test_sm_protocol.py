"""The append hot path writes and reads exactly the SDK's shapes."""

from __future__ import annotations

import cbor2
import pytest
from stream_manager.data import AppendMessageRequest, AppendMessageResponse, Operation, ResponseStatusCode

from edgeml.twin.device.streammanager.errors import InvalidRequestError
from edgeml.twin.device.streammanager.protocol import append_response_frame, decode_append


def test_append_request_as_the_sdk_encodes_it() -> None:
    request = AppendMessageRequest(request_id="r-1", name="results", payload=b"\x00data")
    assert decode_append(cbor2.dumps(request.as_dict())) == ("r-1", "results", b"\x00data")


def test_append_response_as_the_sdk_decodes_it() -> None:
    frame = append_response_frame("r-2", 41)
    assert frame[4] == Operation.AppendMessageResponse.value
    response = AppendMessageResponse.from_dict(cbor2.loads(frame[5:]))
    assert (response.request_id, response.status, response.sequence_number) == (
        "r-2",
        ResponseStatusCode.Success,
        41,
    )


@pytest.mark.parametrize(
    "fields",
    [
        [1, 2],
        {"name": "s", "payload": b"x"},
        {"requestId": "r", "payload": b"x"},
        {"requestId": "r", "name": "s"},
    ],
)
def test_malformed_append_is_an_invalid_request(fields: object) -> None:
    with pytest.raises(InvalidRequestError):
        decode_append(cbor2.dumps(fields))
