"""Where a nucleus keeps things under its root (NUC util/NucleusPaths.java, ComponentStore.java)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class NucleusPaths:
    root: Path

    def artifact_path(self, name: str, version: str) -> Path:  # {artifacts:path}
        return self.root / "packages" / "artifacts" / name / version

    def unarchive_path(self, name: str, version: str) -> Path:  # {artifacts:decompressedPath}
        return self.root / "packages" / "artifacts-unarchived" / name / version

    def recipe_path(self, name: str, version: str) -> Path:
        return self.root / "packages" / "recipes" / f"{name}-{version}.recipe.json"

    def work_path(self, name: str) -> Path:  # {work:path}: <root>/work/<componentName>
        return self.root / "work" / name

    def log_path(self, name: str) -> Path:  # logs/<component>.log, as on a nucleus
        return self.root / "logs" / f"{name}.log"

    @property
    def nucleus_log(self) -> Path:
        return self.root / "logs" / "greengrass.log"

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def states_file(self) -> Path:  # component states, for `edgeml twin device status`
        return self.root / "config" / "states.json"

    @property
    def deployments_dir(self) -> Path:
        return self.root / "deployments"

    def make(self) -> None:
        for folder in (
            "packages/artifacts",
            "packages/artifacts-unarchived",
            "packages/recipes",
            "work",
            "logs",
            "config",
            "deployments",
        ):
            (self.root / folder).mkdir(parents=True, exist_ok=True)
