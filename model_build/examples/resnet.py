"""ResNet-18 (11.7 M parameters, 3x224x224 in) in plain torch, seeded weights: a benchmark model.

torchvision has no CPU build here, so the architecture is written out (He et al., 2016).
"""

from __future__ import annotations

from typing import Any


def build_resnet18(*, seed: int = 0) -> bytes:
    """ONNX bytes: input `image` FP32 [-1, 3, 224, 224], output `logits` [-1, 1000]."""
    import numpy as np
    import torch
    from torch import nn

    from .cnn import export_model

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.down: nn.Module = nn.Identity()
            if stride != 1 or cin != cout:
                self.down = nn.Sequential(
                    nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
                )

        def forward(self, x: Any) -> Any:
            out = torch.relu(self.bn1(self.conv1(x)))
            return torch.relu(self.bn2(self.conv2(out)) + self.down(x))

    torch.manual_seed(seed)
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
        nn.MaxPool2d(3, 2, 1),
    ]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    model = nn.Sequential(*layers).eval()
    sample = np.random.default_rng(seed).standard_normal((2, 3, 224, 224)).astype(np.float32)
    return export_model(model, sample, input_name="image", output_name="logits")
