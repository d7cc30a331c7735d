"""Known compile targets (local ONNX Runtime variants, SageMaker Neo devices) and where each runs."""

from __future__ import annotations

from dataclasses import dataclass

from edgeml.errors import EdgemlError


class UnknownTarget(EdgemlError):
    """A --target that is neither a local variant nor a Neo device or platform this tool knows."""


@dataclass(frozen=True, order=True)
class Platform:
    """A Greengrass manifest platform: os, architecture (nucleus names) and accelerator ("cpu" when none).

    architecture uses the nucleus' values: amd64, aarch64, arm (32-bit armv7l). A non-cpu accelerator
    becomes the custom platform attribute `accelerator` in the manifest; a device declares it through the
    nucleus configuration `platformOverride: {accelerator: nvidia}`.
    """

    os: str
    architecture: str
    accelerator: str = "cpu"

    @property
    def has_runtime(self) -> bool:
        """Whether com.edgeml.Runtime (and so com.edgeml.Inference) has a manifest here. Not on 32-bit ARM:
        PyPI has no armv7l wheels of onnxruntime, numpy, Pillow or awscrt (docs/device-platforms.md)."""
        return self.architecture != "arm"

    @property
    def runs_onnx(self) -> bool:
        """Whether com.edgeml.Runtime installs ONNX Runtime here. Not on 32-bit ARM: there are no
        onnxruntime wheels for armv7l, so only DLR (Neo artifacts) runs there."""
        return self.architecture != "arm"

    @property
    def runs_litert(self) -> bool:
        """Whether com.edgeml.Runtime installs LiteRT (ai-edge-litert) here: its wheels are for x86_64
        and aarch64 only, none for armv7l."""
        return self.architecture in ("amd64", "aarch64")

    @property
    def slot(self) -> str:
        """Short id used for artifact names: linux-amd64, linux-aarch64-nvidia, ..."""
        parts = [self.os, self.architecture]
        if self.accelerator != "cpu":
            parts.append(self.accelerator)
        return "-".join(parts)


@dataclass(frozen=True)
class NeoPlatform:
    """A Neo OutputConfig.TargetPlatform (Os, Arch, optional Accelerator): a target without a device name."""

    os: str
    arch: str
    accelerator: str | None = None


@dataclass(frozen=True)
class Target:
    """One compile target: its id, how it is compiled (local or neo) and where its output runs."""

    name: str
    kind: str  # "local" | "neo"
    platform: Platform | None  # None: portable ONNX, runs on every platform with ONNX Runtime
    description: str
    neo_platform: NeoPlatform | None = None  # set for Neo targets given as TargetPlatform, not TargetDevice

    @property
    def framework(self) -> str:
        """metadata.json `framework` of what this target produces."""
        if self.name in LITERT_TARGET_NAMES:
            return "tflite"
        return "onnx" if self.kind == "local" else "dlr"


# LiteRT variants: a .tflite source as it is, or an ONNX source written as .tflite (zoo/tflite_export.py)
LITERT_TARGET_NAMES = ("litert-fp32",)


AMD64 = Platform("linux", "amd64")
AARCH64 = Platform("linux", "aarch64")
ARMV7L = Platform("linux", "arm")  # 32-bit ARM (armv7l): the nucleus reports architecture "arm"
AMD64_NVIDIA = Platform("linux", "amd64", "nvidia")
AARCH64_NVIDIA = Platform("linux", "aarch64", "nvidia")
AARCH64_MALI = Platform("linux", "aarch64", "mali")

# The manifests every model component carries when a variant can fill them (GPU ones first: the nucleus
# takes the first manifest whose platform matches, and only GPU devices declare an accelerator).
# No ARMV7L: com.edgeml.Runtime and com.edgeml.Inference declare no linux-arm manifest (has_runtime).
DEFAULT_PLATFORMS: tuple[Platform, ...] = (AMD64_NVIDIA, AARCH64_NVIDIA, AMD64, AARCH64)

_LOCAL = (
    Target("cpu-fp32", "local", None, "ONNX as exported (ONNX Runtime, any platform)"),
    Target("cpu-opt", "local", None, "ONNX Runtime graph-optimised ONNX"),
    Target("cpu-fp16", "local", None, "FP16 weights (meant for GPU execution providers)"),
    Target("cpu-int8", "local", None, "static INT8 QDQ, calibrated on held-out samples"),
    Target("litert-fp32", "local", None, ".tflite (LiteRT, x86_64 and aarch64): a .tflite source as it is"),
)

_NEO_DEVICES = (
    Target("ml_c5", "neo", AMD64, "Neo: EC2 C5 (x86_64, AVX-512)"),
    Target("ml_m5", "neo", AMD64, "Neo: EC2 M5 (x86_64)"),
    Target("ml_c6g", "neo", AARCH64, "Neo: EC2 C6g (Graviton2)"),
    Target("ml_g4dn", "neo", AMD64_NVIDIA, "Neo: EC2 G4dn (NVIDIA T4)"),
    Target("jetson_nano", "neo", AARCH64_NVIDIA, "Neo: NVIDIA Jetson Nano"),
    Target("jetson_xavier", "neo", AARCH64_NVIDIA, "Neo: NVIDIA Jetson Xavier"),
    Target("jetson_tx2", "neo", AARCH64_NVIDIA, "Neo: NVIDIA Jetson TX2"),
    Target("rasp3b", "neo", ARMV7L, "Neo: Raspberry Pi 3 Model B (32-bit OS)"),
    Target("rasp4b", "neo", AARCH64, "Neo: Raspberry Pi 4 Model B (64-bit OS)"),
    Target("imx8qm", "neo", AARCH64, "Neo: NXP i.MX 8QuadMax"),
    Target("rk3399", "neo", AARCH64_MALI, "Neo: Rockchip RK3399 (Mali GPU)"),
)

_NEO_PLATFORMS = (
    Target("linux-x86_64", "neo", AMD64, "Neo TargetPlatform LINUX/X86_64", NeoPlatform("LINUX", "X86_64")),
    Target("linux-arm64", "neo", AARCH64, "Neo TargetPlatform LINUX/ARM64", NeoPlatform("LINUX", "ARM64")),
    Target(
        "linux-armv7l",
        "neo",
        ARMV7L,
        "Neo TargetPlatform LINUX/ARM_EABIHF",
        NeoPlatform("LINUX", "ARM_EABIHF"),
    ),
    Target(
        "linux-arm64-nvidia",
        "neo",
        AARCH64_NVIDIA,
        "Neo TargetPlatform LINUX/ARM64/NVIDIA (needs --compiler-options gpu-code, trt-ver, cuda-ver)",
        NeoPlatform("LINUX", "ARM64", "NVIDIA"),
    ),
    Target(
        "linux-x86_64-nvidia",
        "neo",
        AMD64_NVIDIA,
        "Neo TargetPlatform LINUX/X86_64/NVIDIA (needs --compiler-options gpu-code, trt-ver, cuda-ver)",
        NeoPlatform("LINUX", "X86_64", "NVIDIA"),
    ),
)

TARGETS: dict[str, Target] = {target.name: target for target in (*_LOCAL, *_NEO_DEVICES, *_NEO_PLATFORMS)}
LOCAL_TARGET_NAMES: tuple[str, ...] = tuple(target.name for target in _LOCAL)
NEO_TARGET_NAMES: tuple[str, ...] = tuple(target.name for target in (*_NEO_DEVICES, *_NEO_PLATFORMS))


def get_target(name: str, kind: str | None = None) -> Target:
    """The target called `name` (of `kind` "local"/"neo" if given), else UnknownTarget listing known ones."""
    target = TARGETS.get(name)
    if target is None or (kind is not None and target.kind != kind):
        known = [known.name for known in TARGETS.values() if kind is None or known.kind == kind]
        label = f"{kind} target" if kind else "target"
        raise UnknownTarget(f"unknown {label} '{name}'; known: {', '.join(known)}")
    return target
