"""What a ResNet-18-sized classifier costs as a second look on this machine: ms per crop and per batch through
edged's own ``Classifier`` (OpenVINO and ONNX Runtime), at batch 1, 4 and 8.

No ImageNet weights can be fetched here, so the network is ResNet-18's architecture (11.7 M parameters, 1.8 GFLOPs
at 224) with random weights, written in plain PyTorch and exported to ONNX: the timing is the architecture's, the
answers mean nothing. Run it with a Python that has torch (the peer environment the bench builds)::

    ~/.cache/edged/peer-venv/bin/python studies/classifier_cost.py export /tmp/resnet18.onnx
    .venv/bin/python studies/classifier_cost.py time /tmp/resnet18.onnx
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


def export(path: Path) -> None:
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.a = nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                                   nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
            self.skip = nn.Sequential() if stride == 1 and cin == cout else nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.a(x) + self.skip(x))

    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(cin, cout, stride), Block(cout, cout, 1)]
        cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 1000)]
    model = nn.Sequential(*layers).eval()
    print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    torch.onnx.export(model, torch.zeros(1, 3, 224, 224), str(path), input_names=["images"], output_names=["logits"],
                      dynamic_axes={"images": {0: "N"}, "logits": {0: "N"}}, opset_version=17, dynamo=False)


def timing(path: Path) -> None:
    import tempfile

    import numpy as np

    from edged.config.looks import ClassifierConfig
    from edged.looks.classifier import Classifier

    labels = [f"class{i}" for i in range(1000)]
    with tempfile.TemporaryDirectory() as tmp:
        for backend in ("openvino", "onnxruntime"):
            for threads in (1, 2):
                classifier = Classifier("resnet18", ClassifierConfig(model=path, labels=labels, backend=backend,
                                                                     threads=threads, batch=8), Path(tmp))
                classifier.start()
                crops = np.random.default_rng(0).integers(0, 255, (8, 224, 224, 3), np.uint8)
                for batch in (1, 4, 8):
                    runs = max(3, 24 // batch)
                    classifier.infer(crops[:batch])
                    started = time.perf_counter()
                    for _ in range(runs):
                        classifier.infer(crops[:batch])
                    ms = (time.perf_counter() - started) * 1e3 / runs
                    print(f"{backend} {classifier.describe.get('precision')} threads {threads} batch {batch}: "
                          f"{ms:.1f} ms per batch, {ms / batch:.1f} ms per crop")


if __name__ == "__main__":
    {"export": export, "time": timing}[sys.argv[1]](Path(sys.argv[2]))
