"""Every GreengrassV2 operation in botocore's model, called through plain boto3 on the product endpoint:
each is served, or answers an error of a real error shape of the model ("not supported by the twin"
for one the twin does not serve), never a 500 and never an HTML page."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from botocore import xform_name
from botocore.exceptions import ClientError
from cloud_twin_harness import client, endpoint_with, example_value

from edgeml.twin.cloud.endpoint import CloudEndpoint
from edgeml.twin.cloud.protocol.model import service_model
from edgeml.twin.cloud.protocol.validate import validate_input

GREENGRASS = service_model("greengrassv2")
ERROR_SHAPES = {shape.name for shape in GREENGRASS.error_shapes}


@pytest.fixture(scope="module")
def product(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CloudEndpoint]:
    with endpoint_with(tmp_path_factory.mktemp("walk")) as endpoint:
        yield endpoint


@pytest.mark.parametrize("operation", GREENGRASS.operation_names)
def test_every_greengrassv2_operation_is_served_or_clearly_unsupported(product, operation):
    model = GREENGRASS.operation_model(operation)
    params = example_value(model.input_shape, required_only=True) if model.input_shape else {}
    validate_input(model.input_shape, params)  # the generated input is valid, so any refusal is the service's
    try:
        answer = getattr(client(product, "greengrassv2"), xform_name(operation))(**params)
    except ClientError as error:
        response = error.response
        status = response["ResponseMetadata"]["HTTPStatusCode"]
        code = response["Error"]["Code"]
        assert code in ERROR_SHAPES, f"{operation}: {code} is no error shape of greengrassv2"
        assert status == GREENGRASS.shape_for(code).metadata["error"]["httpStatusCode"]
        assert status < 500, f"{operation}: {status} {response['Error']}"
        if response.get("reason") == "UNKNOWN_OPERATION":
            assert f"{operation} (greengrassv2) is not supported by the twin" in response["Error"]["Message"]
        return
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == model.http.get("responseCode", 200)
