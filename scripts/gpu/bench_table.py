#!/usr/bin/env python3
"""Prints the GPU benchmark table (docs/gpu.md) from the JSON files scripts/gpu/bench wrote.

FLOPs counted: the matrix products only, 2 * batch * in * out each: forward, dW, and dX for every linear call but
the first (neither side computes the input's gradient). Peak: for an H100 the fp32 rate without tensor cores from its
datasheet (SXM5 66.9 TFLOP/s, PCIe 51.2, NVL 60.0), chosen by the name nvidia-smi reports; for any other card the
rate PyTorch's own fp32 matrix product (cuBLAS, TF32 off) reached on it in the same run, which is printed for every
card as the practical ceiling.
"""
import json
import os
import sys


def matmul_flops(spec):
    layers = {layer["name"]: layer for layer in spec["model"]["layers"]}
    batch = spec["data"]["batchSize"]
    total = 0
    for i, call in enumerate(spec["model"]["calls"]):
        layer = layers[call]
        if layer["type"] == "linear":
            total += 2 * batch * layer["in"] * layer["out"] * (2 if i == 0 else 3)
    return total


def peak_tflops(name, cublas_tflops):
    if "H100" not in name:
        return cublas_tflops, f"cuBLAS fp32 as measured ({cublas_tflops:.1f} TFLOP/s; no datasheet figure for this card here)"
    if "PCIe" in name:
        return 51.2, "H100 PCIe datasheet fp32 51.2 TFLOP/s"
    if "NVL" in name:
        return 60.0, "H100 NVL datasheet fp32 60 TFLOP/s"
    return 66.9, "H100 SXM5 datasheet fp32 66.9 TFLOP/s"


def main(directory, *specs):
    with open(os.path.join(directory, "gpu.json"), encoding="utf-8") as f:
        gpu = json.load(f)
    peak, peak_note = peak_tflops(gpu["name"], gpu["cublasTflops"])
    print(f"GPU: {gpu['name']} (driver {gpu.get('driver', '?')}); peak used: {peak_note}; "
          f"cuBLAS fp32 (TF32 off) measured here: {gpu['cublasTflops']:.1f} TFLOP/s")
    print(f"{'case':<20} {'native ms':>10} {'torch host ms':>14} {'torch dev ms':>13} {'native/host':>12} {'native/dev':>11} "
          f"{'native TF/s':>12} {'torch TF/s':>11} {'native %peak':>13}")
    for spec_path in specs:
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
        name = spec["name"]
        try:
            with open(os.path.join(directory, f"native-{name}.json"), encoding="utf-8") as f:
                native = json.load(f)[0]
            with open(os.path.join(directory, f"torch-{name}.json"), encoding="utf-8") as f:
                torch_runs = {r["mode"]: r for r in json.load(f)["results"]}
        except (OSError, ValueError, KeyError, IndexError) as error:
            print(f"{name:<20} missing results: {error}")
            continue
        if native.get("error"):
            print(f"{name:<20} native error: {native['error']}")
            continue
        flops = matmul_flops(spec)
        n, th, td = native["medianMs"], torch_runs["host"]["medianMs"], torch_runs["device"]["medianMs"]
        print(f"{name:<20} {n:>10.3f} {th:>14.3f} {td:>13.3f} {n / th:>12.2f} {n / td:>11.2f} "
              f"{flops / n / 1e9:>12.2f} {flops / td / 1e9:>11.2f} {100 * flops / n / 1e9 / peak:>12.1f}%")
        print(f"{'':<20} ({flops / 1e9:.1f} GFLOP of matrix products per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
