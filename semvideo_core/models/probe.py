"""The demo scene probe: a small CNN that reads the demo world's scene grammar from one frame - background kind,
and colour and shape of the largest object (semvideo_core.world.labels). A judge of the demo's images at any stage;
it is trained on ground-truth training frames only."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn


@dataclass
class ProbeConfig:
    size: int = 128  # frames are resized to size x size (the clip resolution)
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])  # per stride-2 stage
    classes: dict[str, int] = field(default_factory=lambda: {"background": 4, "colour": 8, "shape": 7})
    dropout: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


class SceneProbe(nn.Module):
    def __init__(self, config: ProbeConfig):
        super().__init__()
        self.config = config
        layers, width = [], 3
        for channels in config.channels:  # each stage halves the side: conv stride 2, then conv
            layers += [
                nn.Conv2d(width, channels, 3, stride=2, padding=1),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
                nn.Conv2d(channels, channels, 3, padding=1),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            width = channels
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(config.dropout)
        # Max pooling finds a shape wherever it is; average pooling weighs how much of the frame it covers.
        self.heads = nn.ModuleDict({name: nn.Linear(2 * width, n) for name, n in config.classes.items()})

    def forward(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """pixels [B, 3, size, size] in [-1, 1] -> logits per label {name: [B, classes]}."""
        maps = self.features(pixels)  # [B, C, size / 2^stages, size / 2^stages]
        features = self.dropout(torch.cat([maps.amax((2, 3)), maps.mean((2, 3))], 1))  # [B, 2C]
        return {name: head(features) for name, head in self.heads.items()}
