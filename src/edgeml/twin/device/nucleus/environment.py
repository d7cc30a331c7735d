"""The environment a nucleus gives a component process, and the one place the twin adds to it.

NUC lifecyclemanager/ShellRunner.java: SVCUID and AWS_CONTAINER_AUTHORIZATION_TOKEN (both the
component's unique id), the proxy variables (empty without a proxy: not set here), cwd = {work:path};
Kernel/DeviceConfiguration set AWS_IOT_THING_NAME, AWS_REGION, AWS_DEFAULT_REGION, GGC_VERSION,
GG_ROOT_CA_PATH, AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT; the TokenExchangeService sets
AWS_CONTAINER_CREDENTIALS_FULL_URI (DG component-environment-variables). Then the recipe's Setenv:
the lifecycle-level one first, the step's own second (GenericExternalService.addEnv).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# What the nucleus's own process passes on (it is started by systemd with a small environment).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "LOGNAME", "SHELL")

# THE twin-specific addition, named once: where plain boto3 in a component finds the cloud twin. A real
# device reaches AWS's public endpoints; nothing else differs (credentials come from the TES URI).
TWIN_CLOUD_VARIABLES = ("AWS_ENDPOINT_URL",)


def twin_cloud_environment(endpoint_url: str) -> dict[str, str]:
    return {"AWS_ENDPOINT_URL": endpoint_url}


def component_environment(
    *,
    thing_name: str,
    region: str,
    svcuid: str,
    socket_path: str,
    credentials_uri: str,
    nucleus_version: str,
    root_ca_path: str,
    endpoint_url: str,
    setenv: Mapping[str, str],
    system_path: str | None = None,
) -> dict[str, str]:
    """`system_path`: the device OS's PATH (default: this machine's)."""
    env = {name: os.environ[name] for name in INHERITED if name in os.environ}
    if system_path is not None:
        env["PATH"] = system_path
    env.update(
        {
            "AWS_IOT_THING_NAME": thing_name,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "SVCUID": svcuid,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": svcuid,
            "AWS_GG_NUCLEUS_DOMAIN_SOCKET_FILEPATH_FOR_COMPONENT": socket_path,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_uri,
            "GGC_VERSION": nucleus_version,
            "GG_ROOT_CA_PATH": root_ca_path,
        }
    )
    env.update(twin_cloud_environment(endpoint_url))
    env.update({str(k): str(v) for k, v in setenv.items()})
    return env
