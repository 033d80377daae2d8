#!/usr/bin/env python3
"""Times one training step of a parity spec's MLP in PyTorch eager (the baseline the native backend is timed against, docs/gpu.md).

The model is built from the spec (docs/spec.md): linear, batchnorm (train mode, the spec's momentum and eps),
layernorm, relu and identity calls in order, shared instances reused; mean softmax cross-entropy; the spec's
optimizer (Adam's sqrtVHat form is PyTorch's own; SGD with momentum). float32 with TF32 off for matrix products and
cuDNN, so both sides do plain fp32 arithmetic. A step is zero_grad, forward, loss, backward, optimizer step, with
torch.cuda.synchronize() before the clock starts and before it stops; the median over --steps after --warmup.
Two modes, both timed: `host` copies the batch from a (pageable) CPU float32 tensor inside the step, as the
native backend's Step does with its batch; `device` starts from a batch already on the GPU. Two batches
alternate so no step reruns the previous one's inputs. Writes JSON to --json.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def build(spec, device):
    layers = {layer["name"]: layer for layer in spec["model"]["layers"]}
    modules = torch.nn.ModuleDict()
    for name, layer in layers.items():
        kind = layer["type"]
        if kind == "linear":
            modules[name] = torch.nn.Linear(layer["in"], layer["out"], bias=layer.get("bias", True))
        elif kind == "batchnorm":
            modules[name] = torch.nn.BatchNorm1d(layer["features"], eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1),
                                                 affine=layer.get("affine", True))
        elif kind == "layernorm":
            modules[name] = torch.nn.LayerNorm(layer["features"], eps=layer.get("eps", 1e-5), elementwise_affine=layer.get("affine", True))
        elif kind in ("relu", "identity"):
            pass
        else:
            raise SystemExit(f"torch_bench: layer type '{kind}' of '{name}' is not supported")
    calls = [layers[c]["type"] for c in spec["model"]["calls"]], spec["model"]["calls"]
    modules = modules.to(device)

    def forward(x):
        for kind, name in zip(*calls):
            if kind == "relu":
                x = F.relu(x)
            elif kind != "identity":
                x = modules[name](x)
        return x
    return modules, forward


def optimizer_for(spec, parameters):
    o = spec["optimizer"]
    if o["type"] == "adam":
        if o.get("epsilonForm", "sqrtVHat") != "sqrtVHat":
            print("torch_bench: note: epsilonHat Adam is timed as PyTorch's sqrtVHat form (same work)", file=sys.stderr)
        return torch.optim.Adam(parameters, lr=o["lr"], betas=(o.get("beta1", 0.9), o.get("beta2", 0.999)), eps=o.get("eps", 1e-8))
    if o["type"] == "sgd":
        return torch.optim.SGD(parameters, lr=o["lr"], momentum=o.get("momentum", 0.0))
    raise SystemExit(f"torch_bench: optimizer '{o['type']}' is not supported")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--json")
    parser.add_argument("--profile", action="store_true", help="also print the per-kernel CUDA time of one step")
    args = parser.parse_args()
    with open(args.spec, encoding="utf-8") as f:
        spec = json.load(f)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.manual_seed(0)
    batch = spec["data"]["batchSize"]
    inputs = spec["model"]["inputs"]
    classes = spec["data"]["train"]["classes"]
    modules, forward = build(spec, device)
    modules.train()
    optimizer = optimizer_for(spec, modules.parameters())
    host = [(torch.randn(batch, inputs), torch.randint(0, classes, (batch,))) for _ in range(2)]
    on_device = [(x.to(device), y.to(device)) for x, y in host]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(forward(x), y)
        loss.backward()
        optimizer.step()
        return loss

    results = []
    for mode in ("host", "device"):
        times = []
        for i in range(args.warmup + args.steps):
            x, y = (host if mode == "host" else on_device)[i % 2]
            sync()
            start = time.perf_counter()
            if mode == "host":
                x, y = x.to(device), y.to(device)
            step(x, y)
            sync()
            elapsed = (time.perf_counter() - start) * 1e3
            if i >= args.warmup:
                times.append(elapsed)
        times.sort()
        q = lambda p: times[min(len(times) - 1, int(round(p * (len(times) - 1))))]
        results.append({"backend": f"pytorch-{mode}", "mode": mode, "steps": args.steps, "medianMs": statistics.median(times),
                        "p10Ms": q(0.1), "p90Ms": q(0.9)})
        print(f"  pytorch ({mode} batch) median {results[-1]['medianMs']:.3f} ms (p10 {results[-1]['p10Ms']:.3f}, p90 {results[-1]['p90Ms']:.3f})")

    info = {"torch": torch.__version__, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
    if args.profile and device.type == "cuda":
        from torch.profiler import profile, ProfilerActivity
        x, y = on_device[0]
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            step(x, y)
            sync()
        print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=14, max_name_column_width=60))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"spec": spec["name"], "info": info, "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
