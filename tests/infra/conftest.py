"""The CDK app synthesised once per session (about 9 s on an idle machine), shared by tests/infra."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from infra_kit import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    yield synthesize(tmp_path_factory.mktemp("cdk.out"))
