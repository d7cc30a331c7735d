"""The cloud twin's protocol layer and dispatch, through plain boto3 and raw signed HTTP on loopback.

The backend here is a small recording one (tests/integration/cloud_twin_harness.py): what is checked is
the wire: routing by the model's URI templates, members parsed from path/query/body, the model's status
codes, error shapes and their members, and which half of the twin a request reaches.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from cloud_twin_harness import (
    ACCOUNT,
    REGION,
    RecordingControlPlane,
    client,
    endpoint_with,
    error_of,
    signed,
)
from moto.backends import get_backend

from edgeml.twin.cloud.endpoint import CloudEndpoint

GROUP_ARN = f"arn:aws:iot:{REGION}:{ACCOUNT}:thinggroup/protocol-fleet"


@pytest.fixture()
def recording(tmp_path: Path) -> Iterator[tuple[CloudEndpoint, RecordingControlPlane]]:
    control_plane = RecordingControlPlane()
    with endpoint_with(tmp_path, lambda state_dir, clock, moto_iot: control_plane) as endpoint:
        yield endpoint, control_plane


def test_create_deployment_members_reach_the_backend_named_and_typed_as_in_the_model(recording):
    endpoint, control_plane = recording
    greengrass = client(endpoint, "greengrassv2")
    answer = greengrass.create_deployment(
        targetArn=GROUP_ARN,
        deploymentName="fleet rollout",
        components={
            "com.example.Hello": {"componentVersion": "1.0.0", "configurationUpdate": {"merge": "{}"}}
        },
        iotJobConfiguration={"jobExecutionsRolloutConfig": {"maximumPerMinute": 50}},
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 201  # the model's responseCode
    assert answer["deploymentId"] == "d-1"
    name, params = control_plane.greengrassv2.calls[-1]
    assert name == "create_deployment"
    assert params["targetArn"] == GROUP_ARN
    assert params["iotJobConfiguration"] == {"jobExecutionsRolloutConfig": {"maximumPerMinute": 50}}
    assert params["components"]["com.example.Hello"]["configurationUpdate"] == {"merge": "{}"}
    assert len(params["clientToken"]) > 0  # botocore fills the idempotency token; it arrives as sent


def test_output_timestamps_and_maps_come_back_as_botocore_parses_them(recording):
    endpoint, _ = recording
    greengrass = client(endpoint, "greengrassv2")
    created = greengrass.create_deployment(
        targetArn=GROUP_ARN, components={"a.b": {"componentVersion": "2.0.0"}}
    )
    got = greengrass.get_deployment(deploymentId=created["deploymentId"])
    assert got["creationTimestamp"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert got["components"] == {"a.b": {"componentVersion": "2.0.0"}}
    assert got["isLatestForTarget"] is True


def test_path_labels_are_percent_decoded_and_greedy_labels_keep_their_slashes(recording):
    endpoint, control_plane = recording
    arn = f"arn:aws:greengrass:{REGION}:{ACCOUNT}:components:com.example.Hello:versions:1.0.0"
    answer = client(endpoint, "greengrassv2").get_component_version_artifact(
        arn=arn, artifactName="models/v1/model.onnx"
    )
    assert answer["preSignedUrl"].endswith("/models/v1/model.onnx")
    _name, params = control_plane.greengrassv2.calls[-1]
    assert params == {"arn": arn, "artifactName": "models/v1/model.onnx"}


def test_blob_members_arrive_as_bytes(recording):
    endpoint, control_plane = recording
    recipe = b'{"RecipeFormatVersion": "2020-01-25"}'
    answer = client(endpoint, "greengrassv2").create_component_version(inlineRecipe=recipe)
    assert answer["status"]["componentState"] == "REQUESTED"
    assert control_plane.greengrassv2.calls[-1][1]["inlineRecipe"] == recipe


def test_query_members_are_typed_and_validated(recording):
    endpoint, control_plane = recording
    client(endpoint, "greengrassv2").list_deployments(targetArn=GROUP_ARN, historyFilter="ALL", maxResults=7)
    assert control_plane.greengrassv2.calls[-1] == (
        "list_deployments",
        {"targetArn": GROUP_ARN, "historyFilter": "ALL", "maxResults": 7},
    )
    status, _, body = signed(endpoint, "greengrass", "GET", "/greengrass/v2/deployments?maxResults=seven")
    assert status == 400
    assert "maxResults" in error_of(body)["message"]


def test_an_empty_204_answer_has_no_body(recording):
    endpoint, control_plane = recording
    greengrass = client(endpoint, "greengrassv2")
    created = greengrass.create_deployment(targetArn=GROUP_ARN)
    status, _, body = signed(
        endpoint, "greengrass", "DELETE", f"/greengrass/v2/deployments/{created['deploymentId']}"
    )
    assert (status, body) == (204, b"")
    assert created["deploymentId"] not in control_plane.greengrassv2.deployments


@pytest.mark.parametrize(
    ("deployment_id", "code", "status", "members"),
    [
        ("nope", "ResourceNotFoundException", 404, {"resourceId": "nope", "resourceType": "Deployment"}),
        ("conflict", "ConflictException", 409, {"resourceId": "conflict", "resourceType": "Deployment"}),
        ("quota", "ServiceQuotaExceededException", 402, {"quotaCode": "q-1", "serviceCode": "gg"}),
    ],
)
def test_service_errors_carry_the_models_status_and_members(recording, deployment_id, code, status, members):
    endpoint, _ = recording
    with pytest.raises(ClientError) as raised:
        client(endpoint, "greengrassv2").get_deployment(deploymentId=deployment_id)
    response = raised.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert {key: response[key] for key in members} == members


def test_throttling_puts_retry_after_in_its_header_as_the_model_says(recording):
    endpoint, _ = recording
    status, headers, body = signed(endpoint, "greengrass", "GET", "/greengrass/v2/deployments/busy")
    assert status == 429
    assert headers["x-amzn-errortype"] == "ThrottlingException"
    assert headers["retry-after"] == "7"
    assert error_of(body)["message"] == "slow down"


def test_a_backend_answer_outside_the_output_shape_is_a_json_internal_error_not_a_crash(recording):
    endpoint, _ = recording
    status, headers, body = signed(endpoint, "greengrass", "GET", "/greengrass/v2/deployments/malformed")
    assert status == 500
    assert headers["x-amzn-errortype"] == "InternalServerException"
    assert "notAMember" in error_of(body)["message"]


def test_validation_errors_name_the_field_with_reason_and_fields(recording):
    endpoint, control_plane = recording
    with pytest.raises(ClientError) as raised:
        client(endpoint, "greengrassv2").create_deployment(
            targetArn=GROUP_ARN, deploymentPolicies={"componentUpdatePolicy": {"action": "REBOOT"}}
        )
    response = raised.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["reason"] == "FIELD_VALIDATION_FAILED"
    assert [field["name"] for field in response["fields"]] == [
        "deploymentPolicies.componentUpdatePolicy.action"
    ]
    assert "NOTIFY_COMPONENTS" in response["Error"]["Message"]
    assert control_plane.greengrassv2.calls == []


def test_a_body_that_is_not_json_cannot_be_parsed(recording):
    endpoint, control_plane = recording
    status, _, body = signed(endpoint, "greengrass", "POST", "/greengrass/v2/deployments", b"{not json")
    assert status == 400
    answer = error_of(body)
    assert answer["reason"] == "CANNOT_PARSE"
    assert "not valid JSON" in answer["message"]
    assert control_plane.greengrassv2.calls == []


def test_an_operation_the_backend_lacks_is_a_clear_not_supported_error(recording):
    endpoint, _ = recording
    with pytest.raises(ClientError) as raised:
        client(endpoint, "greengrassv2").list_core_devices()
    response = raised.value.response
    assert response["Error"]["Code"] == "ValidationException"
    assert response["reason"] == "UNKNOWN_OPERATION"
    assert "ListCoreDevices" in response["Error"]["Message"]
    assert "not supported by the twin" in response["Error"]["Message"]


def test_iot_jobs_data_answers_with_its_own_error_shape(recording):
    endpoint, _control_plane = recording
    jobs = client(endpoint, "iot-jobs-data")
    assert jobs.get_pending_job_executions(thingName="dev-1")["queuedJobs"][0]["jobId"] == "gg-d-1"
    with pytest.raises(ClientError) as raised:
        jobs.describe_job_execution(thingName="dev-1", jobId="gg-d-1")
    assert (
        raised.value.response["Error"]["Code"] == "InvalidRequestException"
    )  # jobs-data has no reason/fields


def test_iot_job_calls_reach_the_control_plane_only_for_jobs_it_owns(recording):
    endpoint, control_plane = recording
    iot = client(endpoint, "iot")
    assert iot.describe_job(jobId="gg-d-1")["job"]["targetSelection"] == "CONTINUOUS"
    iot.create_thing(thingName="protocol-jobs-thing")
    iot.create_job(
        jobId="plain-moto-job",
        targets=[f"arn:aws:iot:{REGION}:{ACCOUNT}:thing/protocol-jobs-thing"],
        document=json.dumps({"step": 1}),
    )
    assert iot.describe_job(jobId="plain-moto-job")["job"]["jobId"] == "plain-moto-job"  # moto's own
    assert [call[1]["jobId"] for call in control_plane.iot.calls] == ["gg-d-1"]
    executions = iot.list_job_executions_for_thing(thingName="protocol-jobs-thing")["executionSummaries"]
    assert {summary["jobId"] for summary in executions} == {"gg-d-1", "plain-moto-job"}  # both halves


def test_greengrass_v1_requests_still_reach_moto(recording):
    endpoint, control_plane = recording
    group = client(endpoint, "greengrass").create_group(Name="v1-group")
    assert client(endpoint, "greengrass").get_group(GroupId=group["Id"])["Name"] == "v1-group"
    assert control_plane.backend_calls() == 0


def test_every_iot_data_publish_reaches_the_control_plane_and_moto(recording):
    endpoint, control_plane = recording
    topic = "$aws/things/dev-7/greengrassv2/health/json"
    payload = json.dumps({"thing": "dev-7"}).encode()
    client(endpoint, "iot-data").publish(topic=topic, qos=1, payload=payload)
    assert control_plane.published == [(topic, payload, REGION)]
    recorded = get_backend("iot-data")[ACCOUNT][REGION].published_payloads  # type: ignore[call-overload]
    assert (topic, payload) in [(t, p) for t, p in recorded]


def test_s3_presigned_urls_are_dispatched_by_their_credential_scope(recording):
    endpoint, _ = recording
    s3 = client(endpoint, "s3")
    s3.create_bucket(Bucket="protocol-presigned")
    s3.put_object(Bucket="protocol-presigned", Key="a.bin", Body=b"\x00\x01")
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "protocol-presigned", "Key": "a.bin"})
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.read() == b"\x00\x01"


def test_blob_that_is_not_base64_names_the_member(recording):
    endpoint, control_plane = recording
    body = json.dumps({"inlineRecipe": "***", "clientToken": "t-1"}).encode()
    status, _, answer = signed(endpoint, "greengrass", "POST", "/greengrass/v2/createComponentVersion", body)
    assert status == 400
    assert error_of(answer)["fields"][0]["name"] == "inlineRecipe"
    good = json.dumps({"inlineRecipe": base64.b64encode(b"{}").decode(), "clientToken": "t-2"}).encode()
    status, _, _ = signed(endpoint, "greengrass", "POST", "/greengrass/v2/createComponentVersion", good)
    assert status == 201
    assert [params["inlineRecipe"] for _, params in control_plane.greengrassv2.calls] == [b"{}"]


def test_java_character_classes_in_model_patterns_are_enforced(recording):
    """iot-jobs-data's DetailsValue is `[^\\p{C}]+` (Java): a control character alone breaks it."""
    endpoint, control_plane = recording
    jobs = client(endpoint, "iot-jobs-data")
    with pytest.raises(ClientError) as raised:
        jobs.update_job_execution(
            thingName="dev-1",
            jobId="gg-d-1",
            status="IN_PROGRESS",
            statusDetails={"deployment-error-stack": "\x07"},
        )
    assert raised.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "statusDetails" in raised.value.response["Error"]["Message"]
    assert control_plane.backend_calls() == 0
