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
    dense_stage: int = 2  # the stage whose maps also predict, per position, the shape and colour on top
    colour_readout: str = "head"  # head: the pooled head; dense: the colour covering the most cells of those maps

    def __post_init__(self):
        if not 0 <= self.dense_stage < len(self.channels):
            raise ValueError(f"probe dense_stage {self.dense_stage} is not one of the {len(self.channels)} stages")
        if self.colour_readout not in ("dense", "head"):
            raise ValueError(f"probe colour_readout must be dense or head, got {self.colour_readout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


class SceneProbe(nn.Module):
    def __init__(self, config: ProbeConfig):
        super().__init__()
        self.config = config
        stages, width = [], 3
        for channels in config.channels:  # each stage halves the side: conv stride 2, then conv
            stages.append(
                nn.Sequential(
                    nn.Conv2d(width, channels, 3, stride=2, padding=1),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True),
                    nn.Conv2d(channels, channels, 3, padding=1),
                    nn.BatchNorm2d(channels),
                    nn.ReLU(inplace=True),
                )
            )
            width = channels
        self.stages = nn.ModuleList(stages)
        self.dropout = nn.Dropout(config.dropout)
        # Max pooling finds a shape wherever it is; average pooling weighs how much of the frame it covers.
        self.heads = nn.ModuleDict({name: nn.Linear(2 * width, n) for name, n in config.classes.items()})
        # Per position: background or one of the shapes (colours) - the dense targets of shot_label_maps.
        dense_width = config.channels[config.dense_stage]
        self.dense_heads = nn.ModuleDict(
            {name: nn.Conv2d(dense_width, config.classes[name] + 1, 1) for name in ("shape", "colour")}
        )

    def forward(self, pixels: torch.Tensor, dense: bool = False) -> dict[str, torch.Tensor]:
        """pixels [B, 3, size, size] in [-1, 1] -> logits per label {name: [B, classes]}; with `dense`, also
        {dense_shape, dense_colour: [B, classes + 1, size / 2^(dense_stage + 1), ...]} (class 0: background)."""
        maps, logits = pixels, {}
        for i, stage in enumerate(self.stages):
            maps = stage(maps)  # [B, C_i, size / 2^(i + 1), size / 2^(i + 1)]
            if dense and i == self.config.dense_stage:
                logits |= {f"dense_{name}": head(maps) for name, head in self.dense_heads.items()}
        features = self.dropout(torch.cat([maps.amax((2, 3)), maps.mean((2, 3))], 1))  # [B, 2C]
        return logits | {name: head(features) for name, head in self.heads.items()}

    def read(self, pixels: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
        """pixels [B, 3, size, size] -> predicted class per label of `names`, int64 [B, len(names)], from the heads;
        with `colour_readout` dense, the largest object's colour is instead the colour whose cells cover the most of
        the frame, which is what the label means."""
        dense = self.config.colour_readout == "dense"
        logits = self(pixels, dense=dense)
        if dense:
            cover = logits["dense_colour"].softmax(1)[:, 1:].sum((2, 3))  # [B, colours]: expected cells per colour
            logits = logits | {"colour": cover}
        return torch.stack([logits[name].argmax(-1) for name in names], -1)
