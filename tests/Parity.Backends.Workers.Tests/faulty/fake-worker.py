#!/usr/bin/env python3
"""A tiny protocol-1 worker with no framework, for the harness's fault tests.

It answers every request correctly with zero tensors (loss ln(classes), accuracy 0) until its FAULT
(first argument) strikes at step AT (second argument, default 2):
  ok            never fails
  crash         exits with code 7 in the middle of step AT (after writing to stderr)
  hang          stops answering at step AT
  garbage       writes a non-JSON line on stdout at step AT
  partial       writes half a response without a newline and exits at step AT
  version       announces protocol 99 in the ready line
  nan           puts NaN into forward:<first call> at step AT while the loss is finite
  base64        sends invalid base64 for the loss at step AT
  bytes         sends a loss tensor with 3 bytes at step AT
  error         answers step AT with {"error": {"message": ...}}
  noready       writes nothing and exits with code 4 before the handshake
"""
import base64
import json
import math
import os
import struct
import sys
import time

FAULT = sys.argv[1] if len(sys.argv) > 1 else "ok"
AT = int(sys.argv[2]) if len(sys.argv) > 2 else 2


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def tensor(shape, value=0.0):
    n = math.prod(shape)
    return {"dtype": "float32", "shape": shape, "data": base64.b64encode(struct.pack("<%df" % n, *([value] * n))).decode()}


if FAULT == "noready":
    print("fake worker: refusing to start", file=sys.stderr, flush=True)
    sys.exit(4)

send({"type": "ready", "protocol": 99 if FAULT == "version" else 1, "framework": "fake", "version": "0.1",
      "capabilities": {"dtypes": ["float32", "float64"], "devices": ["cpu"], "frameworkInit": False}})

spec = None
for line in sys.stdin:
    req = json.loads(line)
    op, rid = req["op"], req["id"]
    if op == "build":
        spec = req["spec"]
        send({"id": rid, "mismatches": [], "runtime": {"fake": "yes"}})
        continue
    if op == "shutdown":
        send({"id": rid})
        break
    if op == "load_state":
        send({"id": rid})
        continue
    model = spec["model"]
    layers = {l["name"]: l for l in model["layers"]}
    width, calls = model["inputs"], []
    for c in model["calls"]:
        l = layers[c["layer"]]
        width = l["out"] if l["type"] == "linear" else width
        calls.append((c["id"], l, width))
    params = []
    for l in model["layers"]:
        if l["type"] == "linear":
            params.append((l["name"] + ".weight", [l["out"], l["in"]]))
            if l["bias"]:
                params.append((l["name"] + ".bias", [l["out"]]))
        elif l["type"] in ("batchnorm", "layernorm") and l["affine"]:
            params += [(l["name"] + ".gamma", [l["features"]]), (l["name"] + ".beta", [l["features"]])]
    bns = [l for l in model["layers"] if l["type"] == "batchnorm"]
    state = [{"kind": "parameter", "site": n, "tensor": tensor(s)} for n, s in params]
    for l in bns:
        state += [{"kind": "runningMean", "site": l["name"], "tensor": tensor([l["features"]])},
                  {"kind": "runningVariance", "site": l["name"], "tensor": tensor([l["features"]], 1.0)}]
    if op == "read_state":
        send({"id": rid, "entries": state})
        continue
    step = req["step"]
    rows = len(req["labels"])
    inputs = req["inputs"]
    if os.environ.get("FAKE_REQUIRE_FILE") == "1" and "file" not in inputs:
        send({"id": rid, "error": {"message": "inputs came inline; FAKE_REQUIRE_FILE wants a file reference"}})
        continue
    raw = base64.b64decode(inputs["data"]) if "data" in inputs else open(inputs["file"], "rb").read()
    if len(raw) != 4 * math.prod(inputs["shape"]) or inputs["shape"][0] != rows:
        send({"id": rid, "error": {"message": f"inputs: {len(raw)} bytes for shape {inputs['shape']} and {rows} labels"}})
        continue
    want = set(req["capture"])
    strikes = op == "step" and step == AT
    if strikes and FAULT == "crash":
        print(f"fake worker: simulated crash in step {step}", file=sys.stderr, flush=True)
        sys.exit(7)
    if strikes and FAULT == "hang":
        print(f"fake worker: hanging in step {step}", file=sys.stderr, flush=True)
        time.sleep(3600)
    if strikes and FAULT == "garbage":
        print("Epoch 1/1 - loss: 0.5")
        sys.stdout.flush()
        continue
    if strikes and FAULT == "partial":
        sys.stdout.write('{"id": %d, "entries": [' % rid)
        sys.stdout.flush()
        sys.exit(0)
    if strikes and FAULT == "error":
        send({"id": rid, "error": {"message": "simulated framework error: out of memory"}})
        continue
    classes = calls[-1][2]
    if op == "step":
        entries = [{"kind": "loss", "site": "", "tensor": tensor([], math.log(classes))},
                   {"kind": "trainAccuracy", "site": "", "tensor": tensor([], 0.0)}]
        for cid, l, w in calls:
            if "forward" in want:
                entries.append({"kind": "forward", "site": cid, "tensor": tensor([rows, w], float("nan") if strikes and FAULT == "nan" and cid == calls[0][0] else 0.0)})
            if l["type"] == "batchnorm":
                for k in ("batchMean", "batchVariance"):
                    if k in want:
                        entries.append({"kind": k, "site": cid, "tensor": tensor([w])})
            if "outputGradient" in want:
                entries.append({"kind": "outputGradient", "site": cid, "tensor": tensor([rows, w])})
        if "parameterGradient" in want:
            entries += [{"kind": "parameterGradient", "site": n, "tensor": tensor(s)} for n, s in params]
        entries += [e for e in state if e["kind"] in want]
        if strikes and FAULT == "base64":
            entries[0]["tensor"]["data"] = "@@not base64@@"
        if strikes and FAULT == "bytes":
            entries[0]["tensor"]["data"] = base64.b64encode(b"abc").decode()
        send({"id": rid, "entries": entries, "computeMs": 0.1})
    else:
        entries = [{"kind": "evalLoss", "site": "", "tensor": tensor([], math.log(classes))},
                   {"kind": "evalAccuracy", "site": "", "tensor": tensor([], 0.0)}]
        if "evalOutput" in want:
            entries += [{"kind": "evalOutput", "site": cid, "tensor": tensor([rows, w])} for cid, l, w in calls]
        send({"id": rid, "entries": entries})
