"""AWS's HelloWorld example recipe (DG create-components / upload-components: YAML and JSON, with its
configuration message) published through the cloud twin, deployed to a thing group of device twins,
runs unchanged: each device logs `Hello, <message>!` in logs/com.example.HelloWorld.log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cloud_twin_harness import client
from nucleus_harness import cloud, deploy, device, group_arn, outcome_of, publish, unique, wait_log

# DG "Upload your component": the artifact, verbatim.
HELLO_WORLD_PY = b"""import sys

message = "Hello, %s!" % sys.argv[1]

# Print the message to stdout, which Greengrass saves in a log file.
print(message)
"""

HELLO_WORLD_JSON = """{
  "RecipeFormatVersion": "2020-01-25",
  "ComponentName": "com.example.HelloWorld",
  "ComponentVersion": "VERSION",
  "ComponentDescription": "My first AWS IoT Greengrass component.",
  "ComponentPublisher": "Amazon",
  "ComponentConfiguration": {
    "DefaultConfiguration": {
      "Message": "world"
    }
  },
  "Manifests": [
    {
      "Platform": {
        "os": "linux"
      },
      "Lifecycle": {
        "Run": "python3 -u {artifacts:path}/hello_world.py \\"{configuration:/Message}\\""
      },
      "Artifacts": [
        {
          "URI": "s3://BUCKET/artifacts/com.example.HelloWorld/VERSION/hello_world.py"
        }
      ]
    },
    {
      "Platform": {
        "os": "windows"
      },
      "Lifecycle": {
        "Run": "py -3 -u {artifacts:path}/hello_world.py \\"{configuration:/Message}\\""
      },
      "Artifacts": [
        {
          "URI": "s3://BUCKET/artifacts/com.example.HelloWorld/VERSION/hello_world.py"
        }
      ]
    }
  ]
}
"""

HELLO_WORLD_YAML = """---
RecipeFormatVersion: '2020-01-25'
ComponentName: com.example.HelloWorld
ComponentVersion: 'VERSION'
ComponentDescription: My first AWS IoT Greengrass component.
ComponentPublisher: Amazon
ComponentConfiguration:
  DefaultConfiguration:
    Message: world
Manifests:
  - Platform:
      os: linux
    Lifecycle:
      Run: |
        python3 -u {artifacts:path}/hello_world.py "{configuration:/Message}"
    Artifacts:
      - URI: s3://BUCKET/artifacts/com.example.HelloWorld/VERSION/hello_world.py
  - Platform:
      os: windows
    Lifecycle:
      Run: |
        py -3 -u {artifacts:path}/hello_world.py "{configuration:/Message}"
    Artifacts:
      - URI: s3://BUCKET/artifacts/com.example.HelloWorld/VERSION/hello_world.py
"""


@pytest.mark.slow
@pytest.mark.parametrize("recipe_text", [HELLO_WORLD_JSON, HELLO_WORLD_YAML], ids=["json", "yaml"])
def test_hello_world_recipe_runs_unchanged_on_a_thing_group(tmp_path: Path, recipe_text: str) -> None:
    bucket, group, version = unique("hello-"), unique("hello-fleet-"), "1.0.0"
    recipe = recipe_text.replace("BUCKET", bucket).replace("VERSION", version)
    with cloud(tmp_path / "cloud") as endpoint:
        publish(
            endpoint,
            recipe,
            {f"artifacts/com.example.HelloWorld/{version}/hello_world.py": HELLO_WORLD_PY},
            bucket,
        )
        twins = [device(endpoint, tmp_path, unique("hello-core-"), [group]) for _ in range(2)]
        for twin in twins:
            twin.start()
        try:
            deployment = deploy(
                endpoint,
                group_arn(endpoint, group),
                {
                    "com.example.HelloWorld": {
                        "componentVersion": version,
                        "configurationUpdate": {"merge": json.dumps({"Message": "friend"})},
                    }
                },
            )
            for twin in twins:
                assert outcome_of(twin, deployment).status == "SUCCESSFUL"
                log = wait_log(twin.log_path("com.example.HelloWorld"), "Hello, friend!")
                assert "stdout. Hello, friend!" in log
                work = twin.paths.work_path("com.example.HelloWorld")
                assert work.is_dir()  # the Run step's working directory, {work:path}
            greengrass = client(endpoint, "greengrassv2")
            for twin in twins:
                effective = greengrass.list_effective_deployments(coreDeviceThingName=twin.thing_name)
                statuses = {
                    e["deploymentId"]: e["coreDeviceExecutionStatus"]
                    for e in effective["effectiveDeployments"]
                }
                assert statuses[deployment] == "SUCCEEDED"  # thing-group target (BOTO EffectiveDeployment)
        finally:
            for twin in twins:
                twin.stop()
