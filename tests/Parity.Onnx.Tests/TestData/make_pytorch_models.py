"""Writes the PyTorch-exported ONNX models the import tests read (run once, on a machine with PyTorch).

Each model is put in eval mode after a few train-mode passes (so running statistics are not 0 and 1),
exported with torch.onnx.export, and saved beside a JSON holding a small input batch and PyTorch's own
eval-mode logits for it: the import tests check that Parity's spec + weights, evaluated in ONNX
Runtime, reproduce PyTorch's outputs.

    python3 make_pytorch_models.py OUTDIR
"""
import json
import sys

import torch
from torch import nn

torch.manual_seed(0)


class SharedBn(nn.Module):
    """Seed 000's mistake: one BatchNorm1d called after both hidden layers."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(12, 16)
        self.bn = nn.BatchNorm1d(16, eps=1e-3)
        self.l2 = nn.Linear(16, 16)
        self.l3 = nn.Linear(16, 4)

    def forward(self, x):
        x = torch.relu(self.bn(self.l1(x)))
        x = torch.relu(self.bn(self.l2(x)))
        return self.l3(x)


MODELS = {
    # An image input flattened by the model itself.
    "pytorch-flatten-bn": (nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.BatchNorm1d(16), nn.ReLU(),
                                         nn.Linear(16, 16), nn.BatchNorm1d(16, momentum=0.01), nn.ReLU(), nn.Linear(16, 4)),
                           (1, 3, 4)),
    "pytorch-shared-bn": (SharedBn(), (12,)),
    "pytorch-layernorm": (nn.Sequential(nn.Linear(12, 16), nn.LayerNorm(16), nn.ReLU(), nn.Identity(),
                                        nn.Linear(16, 8, bias=False), nn.ReLU(), nn.Linear(8, 4)),
                          (12,)),
}


def main(out):
    for name, (model, shape) in MODELS.items():
        model.train()
        with torch.no_grad():
            for _ in range(5):
                model(torch.randn(32, *shape) * 2 + 0.5)
        model.eval()
        x = torch.randn(6, *shape)
        with torch.no_grad():
            logits = model(x)
        torch.onnx.export(model, (x,), f"{out}/{name}.onnx", input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False)
        with open(f"{out}/{name}.json", "w") as f:
            json.dump({"torch": torch.__version__, "inputShape": list(x.shape),
                       "input": x.reshape(-1).tolist(), "logits": logits.reshape(-1).tolist()}, f, indent=1)
        print(name, "ok")


if __name__ == "__main__":
    main(sys.argv[1])
