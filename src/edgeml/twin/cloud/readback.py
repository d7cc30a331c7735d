"""Reading back what reached the cloud (the twin or AWS), through plain boto3: Kinesis records, S3 objects."""

from __future__ import annotations

import boto3


def kinesis_payloads(stream: str) -> list[bytes]:
    """Every record of a Kinesis stream from TRIM_HORIZON, shard by shard, oldest first in each shard."""
    kinesis = boto3.client("kinesis")
    payloads: list[bytes] = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            payloads += [record["Data"] for record in page["Records"]]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return payloads


def s3_object_count(bucket: str, prefix: str = "") -> int:
    """How many objects are under `prefix` in `bucket`."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(len(page.get("Contents", [])) for page in pages)
