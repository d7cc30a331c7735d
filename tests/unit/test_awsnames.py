"""Local checks of AWS names (src/edgeml/awsnames.py) against S3's and SageMaker's documented rules."""

from __future__ import annotations

import re

import pytest

from edgeml.awsnames import InvalidAwsValue, check_bucket_name, check_compiler_options, check_role_arn
from edgeml.errors import EdgemlError

# https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, "Example general purpose
# bucket names" and each rule in turn.
VALID_BUCKETS = ["docexamplebucket1", "log-delivery-march-2020", "my-hosted-content", "abc", "a" * 63,
                 "docexamplewebsite.com", "www.docexamplewebsite.com", "my.example.s3.bucket", "1-2.x"]
INVALID_BUCKETS = {
    "ab": "3 to 63",
    "a" * 64: "3 to 63",
    "doc_example_bucket": "lowercase letters",
    "DocExampleBucket": "lowercase letters",
    "B": "3 to 63",
    "doc-example-bucket-": "begin and end",
    ".bucket": "begin and end",
    "my..bucket": "adjacent periods",
    "192.168.5.4": "IP address",
    "xn--bucket": "prefix 'xn--'",
    "sthree-bucket": "prefix 'sthree-'",
    "amzn-s3-demo-bucket": "prefix 'amzn-s3-demo-'",
    "bucket-s3alias": "suffix '-s3alias'",
    "bucket--ol-s3": "suffix '--ol-s3'",
    "bucket.mrap": "suffix '.mrap'",
    "bucket--x-s3": "suffix '--x-s3'",
    "bucket--table-s3": "suffix '--table-s3'",
}


@pytest.mark.parametrize("name", VALID_BUCKETS)
def test_valid_bucket_names_pass_unchanged(name: str) -> None:
    assert check_bucket_name(name) == name


@pytest.mark.parametrize(("name", "reason"), INVALID_BUCKETS.items())
def test_invalid_bucket_names_name_the_option_the_value_and_the_rule(name: str, reason: str) -> None:
    with pytest.raises(EdgemlError) as caught:
        check_bucket_name(name, "--capture-bucket")
    message = str(caught.value)
    assert message.startswith(f"--capture-bucket '{name}': not a valid S3 bucket name")
    assert reason in message
    assert "\n" not in message


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/SageMakerRole",
        "arn:aws-cn:iam::123456789012:role/service-role/AmazonSageMaker-ExecutionRole-2020",
        "arn:aws-us-gov:iam::123456789012:role/a/b/c+=,.@_-",
    ],
)
def test_role_arns_sagemaker_accepts_pass(arn: str) -> None:
    assert check_role_arn(arn) == arn


@pytest.mark.parametrize(
    "arn",
    [
        "ARN",
        "arn:aws:iam::12345:role/Short",  # account id is 12 digits
        "arn:aws:iam::123456789012:user/Alice",  # a user, not a role
        "arn:aws:s3:::bucket",
        "arn:aws:iam::123456789012:role/" + "r" * 65,  # IAM role names are at most 64 characters
        "arn:aws:iam::123456789012:role/has space",
        " arn:aws:iam::123456789012:role/Padded",
    ],
)
def test_other_role_arns_are_refused_with_an_example(arn: str) -> None:
    with pytest.raises(InvalidAwsValue, match="--role-arn"):
        check_role_arn(arn)


def test_compiler_options_must_be_a_json_object() -> None:
    assert check_compiler_options('{"gpu-code": "sm_72"}') == '{"gpu-code": "sm_72"}'
    with pytest.raises(InvalidAwsValue, match=re.escape("--compiler-options '{gpu-code: sm_72}': not JSON")):
        check_compiler_options("{gpu-code: sm_72}")
    with pytest.raises(InvalidAwsValue, match="must be a JSON object"):
        check_compiler_options('["a", "b"]')
    with pytest.raises(InvalidAwsValue, match="3 to 1024"):
        check_compiler_options("{}")
    with pytest.raises(InvalidAwsValue, match="3 to 1024"):
        check_compiler_options('{"a": "' + "x" * 1024 + '"}')
