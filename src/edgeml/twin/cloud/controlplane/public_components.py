"""Public components under owner `aws` that our recipes depend on, with their default configuration.

Recipes written from the DG component pages (greengrass-nucleus-component, stream-manager-component,
token-exchange-service-component): names, versions, dependencies and DefaultConfiguration keys with
their documented defaults. The twin offers no artifacts for them (the simulated nucleus provides the
behaviour); the recipes exist so that dependency resolution and configuration work as against AWS.
"""

from __future__ import annotations

from typing import Any

NUCLEUS_VERSIONS = ("2.12.6", "2.13.0", "2.14.3")
STREAM_MANAGER_VERSIONS = ("2.1.13", "2.2.1")
TOKEN_EXCHANGE_VERSIONS = ("2.0.3",)

_LINUX_WINDOWS = [
    {"Platform": {"os": "linux"}, "Lifecycle": {}},
    {"Platform": {"os": "windows"}, "Lifecycle": {}},
]


def _nucleus(version: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "aws.greengrass.Nucleus",
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.nucleus",
        "ComponentDescription": "Core functionality for device side orchestration of deployments and "
        "lifecycle management for execution of Greengrass components and applications.",
        "ComponentPublisher": "AWS",
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                "awsRegion": "",
                "iotRoleAlias": "",
                "iotDataEndpoint": "",
                "iotCredEndpoint": "",
                "greengrassDataPlanePort": 8443,
                "jvmOptions": "",
                "runWithDefault": {"posixUser": "ggc_user:ggc_group"},
                "deploymentPollingFrequencySeconds": 15,
                "componentStoreMaxSizeBytes": 10000000000,
                "platformOverride": {},
                "mqtt": {
                    "port": 8883,
                    "keepAliveTimeoutMs": 60000,
                    "pingTimeoutMs": 30000,
                    "maxInFlightPublishes": 5,
                    "maxMessageSizeInBytes": 131072,
                    "maxPublishRetry": 100,
                    "spooler": {
                        "storageType": "Memory",
                        "maxSizeInBytes": 2621440,
                        "keepQos0WhenOffline": False,
                    },
                },
                "networkProxy": {"noProxyAddresses": ""},
                "logging": {
                    "level": "INFO",
                    "format": "TEXT",
                    "outputType": "FILE",
                    "fileSizeKB": 1024,
                    "totalLogsSizeKB": 10240,
                },
                "fleetStatus": {"periodicStatusPublishIntervalSeconds": 86400},
                "telemetry": {
                    "enabled": True,
                    "periodicAggregateMetricsIntervalSeconds": 3600,
                    "periodicPublishMetricsIntervalSeconds": 86400,
                },
                "interpolateComponentConfiguration": False,
            }
        },
        "Manifests": _LINUX_WINDOWS,
    }


def _stream_manager(version: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "aws.greengrass.StreamManager",
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.plugin",
        "ComponentDescription": "The Stream Manager component enables you to process data streams to "
        "transfer to the AWS Cloud from Greengrass core devices.",
        "ComponentPublisher": "AWS",
        "ComponentDependencies": {
            "aws.greengrass.Nucleus": {"VersionRequirement": ">=2.0.0 <3.0.0", "DependencyType": "SOFT"},
            "aws.greengrass.TokenExchangeService": {
                "VersionRequirement": ">=2.0.0 <2.1.0",
                "DependencyType": "HARD",
            },
        },
        "ComponentConfiguration": {
            "DefaultConfiguration": {
                "STREAM_MANAGER_STORE_ROOT_DIR": ".",
                "STREAM_MANAGER_SERVER_PORT": "8088",
                "STREAM_MANAGER_AUTHENTICATE_CLIENT": "true",
                "STREAM_MANAGER_EXPORTER_MAX_BANDWIDTH": "",
                "STREAM_MANAGER_EXPORTER_THREAD_POOL_SIZE": "5",
                "STREAM_MANAGER_EXPORTER_S3_DESTINATION_MULTIPART_UPLOAD_MIN_PART_SIZE_BYTES": "5242880",
                "JVM_ARGS": "",
                "LOG_LEVEL": "INFO",
            }
        },
        "Manifests": _LINUX_WINDOWS,
    }


def _token_exchange(version: str) -> dict[str, Any]:
    return {
        "RecipeFormatVersion": "2020-01-25",
        "ComponentName": "aws.greengrass.TokenExchangeService",
        "ComponentVersion": version,
        "ComponentType": "aws.greengrass.plugin",
        "ComponentDescription": "Enables AWS IoT Greengrass core devices to get AWS credentials to interact "
        "with AWS services.",
        "ComponentPublisher": "AWS",
        "ComponentDependencies": {
            "aws.greengrass.Nucleus": {"VersionRequirement": ">=2.0.0 <3.0.0", "DependencyType": "SOFT"},
        },
        "ComponentConfiguration": {"DefaultConfiguration": {}},
        "Manifests": _LINUX_WINDOWS,
    }


def public_recipes() -> list[dict[str, Any]]:
    return (
        [_nucleus(v) for v in NUCLEUS_VERSIONS]
        + [_stream_manager(v) for v in STREAM_MANAGER_VERSIONS]
        + [_token_exchange(v) for v in TOKEN_EXCHANGE_VERSIONS]
    )
