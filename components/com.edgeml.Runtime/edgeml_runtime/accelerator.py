"""Accelerator `auto`: which requirements the device gets, from the manifest the nucleus picked and the GPU
the device shows (standard library only; runs in the Install step before any venv exists).

The Runtime's nvidia manifests (platform `accelerator: nvidia`, which a deployer selects with the nucleus's
`platformOverride`) pass `--device-accelerator nvidia`. With `Accelerator: auto` (the default):

- on an nvidia manifest, an NVIDIA GPU found on the device -> `gpu` (requirements/<platform>-gpu.txt:
  onnxruntime-gpu on x86_64; on Jetson DLR, PyPI having no CUDA ONNX Runtime for aarch64);
- on an nvidia manifest without a GPU found, or without GPU requirements for the platform -> `cpu`, with a
  warning naming what was looked for;
- on any other manifest -> `cpu` (a warning when a GPU is present: the deployer has not declared it).

A GPU is "found" when the driver shows it (paths under the device root): /dev/nvidia0 (a discrete GPU with
the driver loaded: what nvidia-smi and CUDA open), /proc/driver/nvidia/version (the kernel module), and on
Jetson /dev/nvhost-ctrl-gpu or /dev/nvgpu (the Tegra GPU) or /etc/nv_tegra_release (L4T/JetPack): every
device node the inference app's ExecutionProviders `auto` treats as a GPU, and more
(tests/unit/test_rules_per_side.py). `cpu` and `gpu` are taken as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

AUTO = "auto"
CHOICES = ("cpu", "gpu")
ACCELERATORS = (AUTO, *CHOICES)
NVIDIA = "nvidia"
NVIDIA_GPU_SIGNS = (
    "dev/nvidia0",
    "proc/driver/nvidia/version",
    "dev/nvhost-ctrl-gpu",
    "dev/nvgpu",
    "etc/nv_tegra_release",
)


@dataclass(frozen=True)
class AcceleratorChoice:
    """What Accelerator resolved to (cpu | gpu), why, and a warning for the operator (or None)."""

    accelerator: str
    reason: str
    warning: str | None = None


def nvidia_gpu_signs(root: Path = Path("/")) -> list[str]:
    """The NVIDIA GPU signs present under `root` (a device's root; tests give a fake one)."""
    return ["/" + sign for sign in NVIDIA_GPU_SIGNS if (root / sign).exists()]


def choose_accelerator(
    requested: str,
    device_accelerator: str,
    platform_name: str,
    requirements_dir: Path,
    root: Path = Path("/"),
) -> AcceleratorChoice:
    """cpu or gpu for `requested` (auto | cpu | gpu) on a manifest declaring `device_accelerator`."""
    if requested in CHOICES:
        return AcceleratorChoice(requested, "as configured")
    if requested != AUTO:
        raise ValueError(f"Accelerator '{requested}': expected one of {', '.join(ACCELERATORS)}")
    found = nvidia_gpu_signs(root)
    if device_accelerator != NVIDIA:
        if found:
            return AcceleratorChoice(
                "cpu",
                "auto: not an nvidia manifest",
                f"Accelerator auto: an NVIDIA GPU is present ({found[0]}) but the nucleus picked a CPU "
                "manifest: installing the CPU build; set the nucleus's platformOverride accelerator: nvidia "
                "(or Accelerator gpu) to install the GPU build",
            )
        return AcceleratorChoice("cpu", "auto: no GPU declared")
    if not found:
        looked = ", ".join("/" + sign for sign in NVIDIA_GPU_SIGNS)
        return AcceleratorChoice(
            "cpu",
            "auto: nvidia manifest, no NVIDIA GPU found",
            "Accelerator auto: the nucleus picked an nvidia manifest but no NVIDIA GPU was found "
            f"({looked}): installing the CPU build; install the NVIDIA driver (JetPack on Jetson) and "
            "redeploy, or set Accelerator cpu",
        )
    if not (requirements_dir / f"{platform_name}-gpu.txt").is_file():
        return AcceleratorChoice(
            "cpu",
            "auto: no GPU requirements",
            f"Accelerator auto: an NVIDIA GPU is present ({found[0]}) but there are no GPU requirements for "
            f"{platform_name} ({platform_name}-gpu.txt): installing the CPU build",
        )
    return AcceleratorChoice("gpu", f"auto: NVIDIA GPU found ({found[0]})")
