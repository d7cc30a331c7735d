"""A MobileNetV2-sized stand-in (random weights, plain torch.nn, no torchvision).

Used only when the EfficientNet-Lite0 weight packages are not installed: it has the same input and
output signature and a similar cost (about 3.5M parameters, 0.3 GFLOPs), so the pipeline and the
benchmarks still run, but its predictions mean nothing.
"""

from __future__ import annotations

from typing import Any

# (expansion, output channels, repeats, first stride) per stage, as in the MobileNetV2 paper.
_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def build_mobilenet_v2(num_classes: int = 1000, seed: int = 0) -> Any:
    """A seeded, randomly initialised MobileNetV2 (width 1.0) as a torch.nn.Module in eval mode."""
    import torch
    from torch import nn

    def conv_bn(
        cin: int, cout: int, kernel: int, stride: int, groups: int = 1, act: bool = True
    ) -> nn.Module:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.ReLU6())
        return nn.Sequential(*layers)

    class InvertedResidual(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
            super().__init__()
            hidden = cin * expansion
            layers: list[nn.Module] = [conv_bn(cin, hidden, 1, 1)] if expansion != 1 else []
            layers += [
                conv_bn(hidden, hidden, 3, stride, groups=hidden),
                conv_bn(hidden, cout, 1, 1, act=False),
            ]
            self.body = nn.Sequential(*layers)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.body(x)
            return x + out if self.residual else out

    torch.manual_seed(seed)
    blocks: list[nn.Module] = [conv_bn(3, 32, 3, 2)]
    channels = 32
    for expansion, cout, repeats, stride in _STAGES:
        for index in range(repeats):
            blocks.append(InvertedResidual(channels, cout, stride if index == 0 else 1, expansion))
            channels = cout
    blocks.append(conv_bn(channels, 1280, 1, 1))
    model = nn.Sequential(
        *blocks, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(1280, num_classes)
    )
    return model.eval()
