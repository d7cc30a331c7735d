"""Fleet status: the nucleus's health messages make core devices and installed components."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from controlplane_kit import REGION, Twin, started_twin

from edgeml.twin.cloud.service import ServiceError

APP = "com.example.App"
T0_MS = 1767225600000  # the ManualClock's start, in the nucleus's milliseconds


@pytest.fixture
def twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Twin]:
    yield from started_twin(tmp_path, monkeypatch)


def _component(
    name: str,
    state: str,
    *,
    root: bool = True,
    arns: list[str] | None = None,
    codes: list[str] | None = None,
    reason: str = "",
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "componentName": name,
        "version": "1.0.0",
        "fleetConfigArns": arns or [],
        "isRoot": root,
        "status": state,
    }
    if codes is not None:
        entry["componentStatusDetails"] = {"statusCodes": codes, "statusReason": reason}
    return entry


def _health(
    twin: Twin,
    thing: str,
    components: list[dict[str, Any]],
    *,
    overall: str = "HEALTHY",
    kind: str = "COMPLETE",
    at_ms: int = T0_MS,
    sequence: int = 1,
) -> bool:
    message = {
        "ggcVersion": "2.14.3",
        "platform": "linux",
        "architecture": "amd64",
        "thing": thing,
        "overallDeviceStatus": overall,
        "sequenceNumber": sequence,
        "timestamp": at_ms,
        "messageType": kind,
        "trigger": "THING_GROUP_DEPLOYMENT",
        "components": components,
    }
    return twin.plane.on_iot_publish(
        f"$aws/things/{thing}/greengrassv2/health/json", json.dumps(message).encode(), REGION
    )


def _error(call: Any, **kwargs: Any) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        call(**kwargs)
    return caught.value


def test_a_status_message_makes_the_core_device(twin: Twin) -> None:
    assert _error(twin.gg.get_core_device, coreDeviceThingName="edge-1").code == "ResourceNotFoundException"
    assert _health(twin, "edge-1", [_component("aws.greengrass.Nucleus", "FINISHED")])
    device = twin.gg.get_core_device(coreDeviceThingName="edge-1")
    assert {k: device[k] for k in ("coreVersion", "platform", "architecture", "runtime", "status")} == {
        "coreVersion": "2.14.3",
        "platform": "linux",
        "architecture": "amd64",
        "runtime": "aws_nucleus_classic",
        "status": "HEALTHY",
    }
    assert device["lastStatusUpdateTimestamp"].timestamp() * 1000 == T0_MS


def test_other_topics_and_bad_payloads_change_nothing(twin: Twin) -> None:
    assert not twin.plane.on_iot_publish("edgeml/edge-1/inference/results", b"{}", REGION)
    assert not twin.plane.on_iot_publish("$aws/things/edge-1/greengrassv2/health/json", b"not json", REGION)
    assert twin.gg.list_core_devices()["coreDevices"] == []


def test_installed_components_with_states_codes_and_their_deployment(twin: Twin) -> None:
    twin.publish(APP, "1.0.0", artifact=None)
    group = twin.group("fleet")
    twin.thing("edge-1", "fleet")
    created = twin.gg.create_deployment(targetArn=group, components={APP: {"componentVersion": "1.0.0"}})
    configuration_arn = json.loads(twin.plane.iot.get_job_document(jobId=created["iotJobId"])["document"])[
        "configurationArn"
    ]
    _health(
        twin,
        "edge-1",
        [
            _component(APP, "ERRORED", arns=[configuration_arn], codes=["RUN_ERROR"], reason="exit code 1"),
            _component("aws.greengrass.Nucleus", "FINISHED", root=False),
        ],
    )
    roots = twin.gg.list_installed_components(coreDeviceThingName="edge-1")["installedComponents"]
    assert [c["componentName"] for c in roots] == [APP]
    app = roots[0]
    assert (app["lifecycleState"], app["lifecycleStatusCodes"], app["lifecycleStateDetails"]) == (
        "ERRORED",
        ["RUN_ERROR"],
        "exit code 1",
    )
    assert app["lastInstallationSource"] == created["deploymentId"]
    everything = twin.gg.list_installed_components(coreDeviceThingName="edge-1", topologyFilter="ALL")
    nucleus = next(
        c for c in everything["installedComponents"] if c["componentName"] == "aws.greengrass.Nucleus"
    )
    assert nucleus["isRoot"] is False and nucleus["lastInstallationSource"] == "LOCAL"


def test_partial_messages_update_only_the_components_they_name(twin: Twin) -> None:
    _health(twin, "edge-1", [_component(APP, "RUNNING"), _component("com.example.B", "RUNNING")])
    _health(
        twin, "edge-1", [_component(APP, "BROKEN")], overall="UNHEALTHY", kind="PARTIAL", at_ms=T0_MS + 5000
    )
    states = {
        c["componentName"]: c
        for c in twin.gg.list_installed_components(coreDeviceThingName="edge-1")["installedComponents"]
    }
    assert (
        states[APP]["lifecycleState"] == "BROKEN" and states["com.example.B"]["lifecycleState"] == "RUNNING"
    )
    assert states[APP]["lastStatusChangeTimestamp"].timestamp() * 1000 == T0_MS + 5000
    assert states["com.example.B"]["lastStatusChangeTimestamp"].timestamp() * 1000 == T0_MS
    assert twin.gg.get_core_device(coreDeviceThingName="edge-1")["status"] == "UNHEALTHY"
    _health(twin, "edge-1", [_component(APP, "RUNNING")], at_ms=T0_MS + 9000)  # COMPLETE: the whole list
    names = [
        c["componentName"]
        for c in twin.gg.list_installed_components(coreDeviceThingName="edge-1")["installedComponents"]
    ]
    assert names == [APP]


def test_an_older_message_arriving_late_is_ignored(twin: Twin) -> None:
    _health(twin, "edge-1", [_component(APP, "BROKEN")], overall="UNHEALTHY", at_ms=T0_MS + 10_000)
    _health(twin, "edge-1", [_component(APP, "RUNNING")], at_ms=T0_MS)
    assert twin.gg.get_core_device(coreDeviceThingName="edge-1")["status"] == "UNHEALTHY"


def test_core_device_filters_and_paging(twin: Twin) -> None:
    twin.publish(APP, "1.0.0", artifact=None)
    group = twin.group("fleet")
    for name in ("a", "b", "c"):
        twin.thing(name, "fleet")
        _health(twin, name, [], overall="UNHEALTHY" if name == "b" else "HEALTHY")
    created = twin.gg.create_deployment(targetArn=group, components={APP: {"componentVersion": "1.0.0"}})
    assert twin.gg.list_core_devices(thingGroupArn=group)["coreDevices"] == []  # nothing succeeded yet
    twin.plane.jobs_data.update_job_execution(jobId=created["iotJobId"], thingName="c", status="SUCCEEDED")
    assert [
        d["coreDeviceThingName"] for d in twin.gg.list_core_devices(thingGroupArn=group)["coreDevices"]
    ] == ["c"]
    twin.iot.remove_thing_from_thing_group(thingGroupName="fleet", thingName="c")
    assert [
        d["coreDeviceThingName"] for d in twin.gg.list_core_devices(thingGroupArn=group)["coreDevices"]
    ] == ["c"]
    unhealthy = twin.gg.list_core_devices(status="UNHEALTHY")["coreDevices"]
    assert [d["coreDeviceThingName"] for d in unhealthy] == ["b"]
    first = twin.gg.list_core_devices(maxResults=2)
    second = twin.gg.list_core_devices(maxResults=2, nextToken=first["nextToken"])
    names = [d["coreDeviceThingName"] for d in first["coreDevices"] + second["coreDevices"]]
    assert names == ["a", "b", "c"] and "nextToken" not in second
    assert _error(twin.gg.list_core_devices, nextToken="garbage!").code == "ValidationException"
