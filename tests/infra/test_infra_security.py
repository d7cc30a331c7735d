"""Security properties of the synthesized templates (aws_cdk.assertions over the session's one synth)."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Match
from infra_kit import Synthesized

from edgeml.config.healthrule import HEALTH_METRICS, HEALTH_TOPIC_FILTER, rule_sql

PARTS = ("Artifacts", "Fleet", "Results", "Health", "Compile")
THING = "${iot:Connection.Thing.ThingName}"


def resources(synthesized: Synthesized, part: str, kind: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in synthesized.json(part)["Resources"].items() if body["Type"] == kind}


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allow_statements(synthesized: Synthesized) -> list[tuple[str, dict[str, Any]]]:
    """Every Allow statement of every IAM policy, role trust, bucket policy and IoT policy."""
    found = []
    for part in PARTS:
        for name, body in synthesized.json(part)["Resources"].items():
            properties = body.get("Properties", {})
            documents = [properties.get(key) for key in ("PolicyDocument", "AssumeRolePolicyDocument")]
            documents += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
            for document in documents:
                if isinstance(document, dict):
                    found += [(f"{part}/{name}", s) for s in statements(document) if s["Effect"] == "Allow"]
    return found


def test_no_allow_statement_has_a_wildcard_action(synthesized: Synthesized) -> None:
    checked = 0
    for where, statement in allow_statements(synthesized):
        for action in as_list(statement.get("Action", [])):
            checked += 1
            assert "*" not in action, f"{where}: wildcard action {action}"
    assert checked > 30


def test_resource_star_only_for_actions_without_resource_types_and_with_a_namespace_condition(
    synthesized: Synthesized,
) -> None:
    stars = [(where, s) for where, s in allow_statements(synthesized) if "*" in as_list(s.get("Resource"))]
    iam_stars = [(where, s) for where, s in stars if not where.startswith("Fleet/CoreDevicePolicy")]
    assert {where.split("/")[0] for where, _ in iam_stars} == {"Health", "Compile"}
    for where, statement in iam_stars:
        assert as_list(statement["Action"]) == ["cloudwatch:PutMetricData"], where
        condition = statement["Condition"]
        assert "cloudwatch:namespace" in json.dumps(condition), where
    health_condition = next(s for w, s in iam_stars if w.startswith("Health"))["Condition"]
    assert health_condition == {
        "StringEquals": {"cloudwatch:namespace": synthesized.settings.metric_namespace}
    }


def test_every_bucket_is_encrypted_private_and_tls_only(synthesized: Synthesized) -> None:
    buckets = {
        **resources(synthesized, "Artifacts", "AWS::S3::Bucket"),
        **resources(synthesized, "Results", "AWS::S3::Bucket"),
    }
    assert len(buckets) == 3
    policies = [
        body["Properties"]
        for part in ("Artifacts", "Results")
        for body in resources(synthesized, part, "AWS::S3::BucketPolicy").values()
    ]
    for name, body in buckets.items():
        properties = body["Properties"]
        rule = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", name
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }, name
        assert body["DeletionPolicy"] == "Retain", name
        own = [p for p in policies if p["Bucket"] == {"Ref": name}]
        assert len(own) == 1, f"{name} has no bucket policy"
        denies = [s for s in statements(own[0]["PolicyDocument"]) if s["Effect"] == "Deny"]
        assert any(
            s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and s["Action"] == "s3:*"
            and s["Principal"] == {"AWS": "*"}
            and len(as_list(s["Resource"])) == 2
            for s in denies
        ), f"{name} does not deny plain-HTTP requests to the bucket and its objects"


def test_artifacts_are_versioned_and_both_data_buckets_log_to_the_log_bucket(
    synthesized: Synthesized,
) -> None:
    artifacts = synthesized.templates["Artifacts"]
    artifacts.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "VersioningConfiguration": {"Status": "Enabled"},
            "LoggingConfiguration": {
                "DestinationBucketName": {"Ref": Match.string_like_regexp("AccessLogs")},
                "LogFilePrefix": "artifacts/",
            },
        },
    )
    synthesized.templates["Results"].has_resource_properties(
        "AWS::S3::Bucket",
        {
            "LoggingConfiguration": {
                "DestinationBucketName": Match.any_value(),
                "LogFilePrefix": "captures/",
            },
            "LifecycleConfiguration": {
                "Rules": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Prefix": "captures/",
                                "ExpirationInDays": synthesized.settings.capture_retention_days,
                                "Status": "Enabled",
                            }
                        )
                    ]
                )
            },
        },
    )
    # The log bucket accepts deliveries for the capture bucket from S3's logging principal only.
    policy = resources(synthesized, "Artifacts", "AWS::S3::BucketPolicy")
    grants = [
        s
        for p in policy.values()
        for s in statements(p["Properties"]["PolicyDocument"])
        if s.get("Sid") == "CaptureBucketAccessLogs"
    ]
    assert len(grants) == 1 and grants[0]["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    capture_bucket = synthesized.settings.bucket_name("captures", "123456789012", "eu-west-1")
    assert grants[0]["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:s3:::{capture_bucket}"}
    assert grants[0]["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    assert json.dumps(grants[0]["Resource"]).endswith('"/captures/*"]]}')


def test_results_stream_is_encrypted_with_the_kinesis_managed_key(synthesized: Synthesized) -> None:
    synthesized.templates["Results"].has_resource_properties(
        "AWS::Kinesis::Stream",
        {
            "Name": synthesized.settings.results_stream,
            "StreamEncryption": {"EncryptionType": "KMS", "KeyId": "alias/aws/kinesis"},
        },
    )


def test_role_alias_points_at_the_token_exchange_role_trusted_by_the_credentials_provider_only(
    synthesized: Synthesized,
) -> None:
    fleet = synthesized.json("Fleet")["Resources"]
    roles = {name: body for name, body in fleet.items() if body["Type"] == "AWS::IAM::Role"}
    assert len(roles) == 1
    role_name, role = next(iter(roles.items()))
    trust = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "credentials.iot.amazonaws.com"},
        }
    ]
    assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
    alias = [body["Properties"] for body in fleet.values() if body["Type"] == "AWS::IoT::RoleAlias"]
    assert len(alias) == 1
    assert alias[0]["RoleAlias"] == synthesized.settings.role_alias
    assert alias[0]["RoleArn"] == {"Fn::GetAtt": [role_name, "Arn"]}
    assert alias[0]["CredentialDurationSeconds"] == synthesized.settings.credential_duration_seconds
    policy = next(body for body in fleet.values() if body["Type"] == "AWS::IoT::Policy")
    exchange = [
        s
        for s in statements(policy["Properties"]["PolicyDocument"])
        if s["Action"] == "iot:AssumeRoleWithCertificate"
    ]
    assert exchange[0]["Resource"] == {"Fn::GetAtt": ["TokenExchangeRoleAlias", "RoleAliasArn"]}


def test_core_device_policy_is_scoped_to_the_connecting_thing(synthesized: Synthesized) -> None:
    fleet = synthesized.json("Fleet")["Resources"]
    policy = next(body for body in fleet.values() if body["Type"] == "AWS::IoT::Policy")["Properties"]
    assert policy["PolicyName"] == synthesized.settings.core_policy
    unscoped_ok = {
        "greengrass:GetComponentVersionArtifact",
        "greengrass:ResolveComponentCandidates",
        "greengrass:GetDeploymentConfiguration",
        "greengrass:ListThingGroupsForCoreDevice",
        "iot:AssumeRoleWithCertificate",
    }
    by_sid = {s["Sid"]: s for s in statements(policy["PolicyDocument"])}
    for sid, statement in by_sid.items():
        actions = set(as_list(statement["Action"]))
        assert all(a.startswith(("iot:", "greengrass:")) and "*" not in a for a in actions), sid
        if actions <= unscoped_ok:
            continue
        for resource in as_list(statement["Resource"]):
            text = json.dumps(resource)
            assert THING in text, f"{sid}: {text} is not scoped to the connecting thing"
            # The thing-name variable is a whole path segment: thing "a" can't reach "ab"'s topics.
            assert f"{THING}*" not in text, f"{sid}: {text} lets a thing reach others sharing its prefix"
    connect = json.dumps(by_sid["Connect"]["Resource"])
    assert f':client/{THING}"' in connect and f':client/{THING}#*"' in connect
    app_topics = json.dumps(by_sid["AppTopics"]["Resource"])
    assert f"topic/edgeml/{THING}/inference/results" in app_topics
    assert f"topic/edgeml/{THING}/inference/health" in app_topics


def test_ring_groups_are_children_of_the_parent_group(synthesized: Synthesized) -> None:
    groups = [b["Properties"] for b in resources(synthesized, "Fleet", "AWS::IoT::ThingGroup").values()]
    settings = synthesized.settings
    parents = [g for g in groups if "ParentGroupName" not in g]
    assert [g["ThingGroupName"] for g in parents] == [settings.parent_group]
    rings = {g["ThingGroupName"]: g["ParentGroupName"] for g in groups if "ParentGroupName" in g}
    assert rings == {settings.ring_group(ring): settings.parent_group for ring in settings.rings}


def test_each_health_metric_has_a_rule_with_its_sql_metric_actions_and_the_error_log(
    synthesized: Synthesized,
) -> None:
    health = synthesized.json("Health")["Resources"]
    rules = {
        b["Properties"]["RuleName"]: b["Properties"]["TopicRulePayload"]
        for b in health.values()
        if b["Type"] == "AWS::IoT::TopicRule"
    }
    assert len(rules) == len(HEALTH_METRICS)
    log_group = next(name for name, b in health.items() if b["Type"] == "AWS::Logs::LogGroup")
    role = next(name for name, b in health.items() if b["Type"] == "AWS::IAM::Role")
    namespace = synthesized.settings.metric_namespace
    for metric in HEALTH_METRICS:
        payload = rules[f"{synthesized.settings.rule_prefix}_{metric.rule_suffix}"]
        assert payload["Sql"] == rule_sql(metric) and f"FROM '{HEALTH_TOPIC_FILTER}'" in payload["Sql"]
        assert payload["AwsIotSqlVersion"] == "2016-03-23" and payload["RuleDisabled"] is False
        actions = [a["CloudwatchMetric"] for a in payload["Actions"]]
        assert [
            (a["MetricNamespace"], a["MetricName"], a["MetricValue"], a["MetricUnit"]) for a in actions
        ] == [
            (namespace, metric.name, "${" + metric.field + "}", metric.unit),
            (namespace, f"{metric.name}/${{topic(2)}}", "${" + metric.field + "}", metric.unit),
        ]
        assert all(a["RoleArn"] == {"Fn::GetAtt": [role, "Arn"]} for a in actions)
        assert payload["ErrorAction"] == {
            "CloudwatchLogs": {"LogGroupName": {"Ref": log_group}, "RoleArn": {"Fn::GetAtt": [role, "Arn"]}}
        }
    assert health[log_group]["Properties"]["RetentionInDays"] == synthesized.settings.log_retention_days


def test_rule_role_is_assumable_by_iot_for_these_rules_in_this_account_only(synthesized: Synthesized) -> None:
    health = synthesized.json("Health")["Resources"]
    role = next(b for b in health.values() if b["Type"] == "AWS::IAM::Role")
    (trust,) = statements(role["Properties"]["AssumeRolePolicyDocument"])
    assert trust["Principal"] == {"Service": "iot.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": "123456789012"}
    arns = trust["Condition"]["ArnLike"]["aws:SourceArn"]
    assert len(arns) == len(HEALTH_METRICS) and all(":rule/edgeml_health_" in json.dumps(a) for a in arns)


def test_alarms_watch_our_namespace_with_the_configured_thresholds(synthesized: Synthesized) -> None:
    health = synthesized.json("Health")["Resources"]
    alarms = {
        b["Properties"]["AlarmName"]: b["Properties"]
        for b in health.values()
        if b["Type"] == "AWS::CloudWatch::Alarm"
    }
    thresholds = synthesized.settings.thresholds
    expected = {
        "edgeml-health-ErrorRate": (thresholds.max_error_rate, "GreaterThanThreshold"),
        "edgeml-health-LatencyP99": (thresholds.max_latency_p99_ms, "GreaterThanThreshold"),
        "edgeml-health-MeanConfidence": (thresholds.min_mean_confidence, "LessThanThreshold"),
        "edgeml-health-ClassPsi": (thresholds.max_class_psi, "GreaterThanThreshold"),
    }
    assert {name: (a["Threshold"], a["ComparisonOperator"]) for name, a in alarms.items()} == expected
    for name, alarm in alarms.items():
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert synthesized.settings.metric_namespace in json.dumps(alarm), name
    error_rate = alarms["edgeml-health-ErrorRate"]["Metrics"]
    expression = [m for m in error_rate if "Expression" in m]
    assert [m["Expression"] for m in expression] == ["IF(requests > 0, errors / requests, 0)"]
    inputs = {m["Id"]: m["MetricStat"]["Metric"]["MetricName"] for m in error_rate if "MetricStat" in m}
    assert inputs == {"errors": "Errors", "requests": "Requests"}


def field(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value[part]
    return value


def test_each_rule_field_is_a_number_in_the_apps_health_record_and_null_when_the_window_is_empty() -> None:
    """The fields the rules read exist in what HealthMonitor.snapshot produces (the app's record body):
    numbers >= 0 after requests, null or 0 in an empty window (a null fails `>= 0`, so no datapoint)."""
    from edgeml_inference.health import HealthMonitor
    from edgeml_inference.metadata import Baseline
    from edgeml_inference.postprocess import Prediction
    from edgeml_inference.results import InferenceResult

    baseline = Baseline((0.5, 0.5), (0.0, 0.5, 1.0), (0.5, 0.5))
    monitor = HealthMonitor(baseline, ("a", "b"))
    empty = monitor.snapshot()
    for index in range(10):
        prediction = Prediction("a", index % 2, 0.9, (("a", index % 2, 0.9),), True)
        monitor.record(InferenceResult(str(index), "test", "ok", "m", "1", prediction, latency_ms=2.0))
    busy = monitor.snapshot()
    for metric in HEALTH_METRICS:
        assert isinstance(field(busy, metric.field), int | float) and field(busy, metric.field) >= 0, metric
        assert field(empty, metric.field) in (None, 0), metric
    assert busy["requests"] == 10 and field(busy, "latency_ms.p99") == 2.0
