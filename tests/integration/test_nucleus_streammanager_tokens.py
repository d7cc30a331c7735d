"""Stream Manager client authentication as on a device: aws.greengrass.StreamManager with
STREAM_MANAGER_AUTHENTICATE_CLIENT=true asks the nucleus whether a client's
AWS_CONTAINER_AUTHORIZATION_TOKEN is a component's own (DG stream-manager-component; the nucleus answers
for the SVCUIDs it gave its components), so a component connects with its own token only; a token of
another device's component, or one made up, is refused. The Stream Manager twin takes that decision as a
token validator (StreamManagerServer's `token_validator`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from nucleus_harness import cloud, deploy, device, eventually, group_arn, outcome_of, publish, recipe, unique
from stream_manager import StreamManagerClient
from stream_manager.exceptions import ConnectFailedException

from edgeml.twin.device.streammanager.server import StreamManagerServer

STREAM_MANAGER = "aws.greengrass.StreamManager"


def _connects(monkeypatch: pytest.MonkeyPatch, port: int, token: str) -> bool:
    monkeypatch.setenv("STREAM_MANAGER_SERVER_PORT", str(port))
    monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", token)
    try:
        client = StreamManagerClient(connect_timeout=5)
    except ConnectFailedException:
        return False
    try:
        client.list_streams()
    finally:
        client.close()
    return True


def test_a_token_validator_decides_on_each_clients_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def one_component(token: str) -> bool:
        return token == "a-component"

    with StreamManagerServer(tmp_path / "store", token_validator=one_component) as server:
        assert "AWS_CONTAINER_AUTHORIZATION_TOKEN" not in server.client_env()  # each client brings its own
        assert _connects(monkeypatch, server.port, "a-component")
        assert not _connects(monkeypatch, server.port, "made-up")
        assert not _connects(monkeypatch, server.port, server.auth_token)  # the fixed token is not used
    with pytest.raises(ValueError, match="not both"):
        StreamManagerServer(tmp_path / "other", auth_token="t", token_validator=lambda token: True)


@pytest.mark.slow
def test_stream_manager_takes_a_components_own_token_and_refuses_another_devices_or_a_made_up_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with cloud(tmp_path / "cloud") as endpoint:
        group = unique("sm-tokens-")
        first = device(endpoint, tmp_path, unique("core-"), [group]).start()
        second = device(endpoint, tmp_path, unique("core-"), [group]).start()
        try:
            name = unique("com.example.TokenHolder")
            publish(
                endpoint,
                recipe(
                    name,
                    "1.0.0",
                    {"Run": 'printf %s "$AWS_CONTAINER_AUTHORIZATION_TOKEN" > token; exec sleep 600'},
                    dependencies={STREAM_MANAGER: (">=2.0.0 <3.0.0", "HARD")},
                ),
            )
            deployment = deploy(endpoint, group_arn(endpoint, group), {name: {"componentVersion": "1.0.0"}})
            tokens = {}
            for twin in (first, second):
                assert outcome_of(twin, deployment, timeout_s=90).job_status == "SUCCEEDED"
                token_file = twin.paths.work_path(name) / "token"
                tokens[twin] = eventually(lambda f=token_file: f.is_file() and f.read_text(), "its token")
            port = first.stream_manager.port
            assert tokens[first] != tokens[second]
            assert _connects(monkeypatch, port, tokens[first])
            assert not _connects(monkeypatch, port, tokens[second])  # another device's component
            assert not _connects(monkeypatch, port, "0123456789abcdef")  # made up
            assert _connects(monkeypatch, second.stream_manager.port, tokens[second])
        finally:
            first.stop()
            second.stop()
