#!/usr/bin/env python3
"""A tiny worker with no framework, for the harness's fault tests.

It speaks protocol 1 (and refuses a capture naming the optimizer kinds protocol 1 does not have), or protocol 2
with FAKE_PROTOCOL=2 (then its state holds the update count and zero optimizer slots). It answers every request
correctly with zero tensors (loss ln(classes), accuracy 0) until its FAULT (first argument) strikes at step AT
(second argument, default 2):
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
  noslots       (protocol 2) leaves the optimizer state out of its step AT answer
  badcount      (protocol 2) answers step AT with optimizerStep 2.5
Hostile modes (docs/worker-protocol.md, section 6, and docs/threat-model.md):
  devzero       answers the loss as the file /dev/zero at step AT
  fifo          answers the loss as a FIFO it made in the exchange directory at step AT
  symlink       answers the loss as a symbolic link in the exchange directory to a file of the right size outside it
  outside       answers the loss as a regular file of the right size outside the exchange directory
  endless       writes one stdout line that never ends at step AT
  bigline       writes one 100 MB garbage line at step AT
  deep          answers step AT with valid JSON nested 70 levels deep
  hugeshape     gives the loss the shape [2147483647, 2147483647] at step AT
  negshape      gives the loss the shape [-1] at step AT
  affects       declares a mismatch with "affects": [1] in build
  dtypes        announces "dtypes": [1] in the ready line
  orphan        starts a child that keeps stdout open, then exits with code 7 at step AT
  setsid        starts a grandchild in a session of its own, then hangs at step AT
  spawnhang     starts a child in its process group, then hangs at step AT
  escapes       writes terminal escapes and forged verdict and report lines to stderr at start and into its error answer at step AT
Children sleep for 600.<FAKE_MARKER> seconds, so a test can look for leftovers by that argument.
"""
import base64
import json
import math
import os
import struct
import subprocess
import sys
import time

FAULT = sys.argv[1] if len(sys.argv) > 1 else "ok"
AT = int(sys.argv[2]) if len(sys.argv) > 2 else 2
SLEEP = "600." + os.environ.get("FAKE_MARKER", "0")
PROTOCOL = int(os.environ.get("FAKE_PROTOCOL", "1"))
OPTIMIZER_KINDS = {"optimizerStep", "optimizerSlot"}
EXCHANGE = None


def send(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def tensor(shape, value=0.0):
    n = math.prod(shape)
    return {"dtype": "float32", "shape": shape, "data": base64.b64encode(struct.pack("<%df" % n, *([value] * n))).decode()}


def answer_file(fault):
    """A file for a 4-byte float32 scalar that the harness must refuse."""
    if fault == "devzero":
        return "/dev/zero"
    inside = os.path.join(EXCHANGE, "answer-hostile.bin")
    outside = os.path.join(os.path.dirname(EXCHANGE), f"parity-fake-outside-{os.getpid()}.bin")
    if fault == "fifo":
        os.mkfifo(inside)
        return inside
    if fault == "short":  # a regular file in the right place, two bytes short of its float32
        with open(inside, "wb") as f:
            f.write(b"\0\0")
        return inside
    with open(outside, "wb") as f:
        f.write(struct.pack("<f", 1.0))
    if fault == "symlink":
        os.symlink(outside, inside)
        return inside
    return outside


# Written at start, so that the stderr tail holds it by the time the error answer arrives.
FORGED = "\x1b]0;pwned\x07\x1b[2J\x1b[31m\nverdict: agree\nreport: /fake\x1b[0m"
if FAULT == "escapes":
    print(f"fake worker: {FORGED}", file=sys.stderr, flush=True)

if FAULT == "noready":
    print("fake worker: refusing to start", file=sys.stderr, flush=True)
    sys.exit(4)

send({"type": "ready", "protocol": 99 if FAULT == "version" else PROTOCOL, "framework": "fake", "version": "0.1",
      "capabilities": {"dtypes": [1] if FAULT == "dtypes" else ["float32", "float64"], "devices": ["cpu"], "frameworkInit": False}})

spec = None
updates = 0
for line in sys.stdin:
    req = json.loads(line)
    op, rid = req["op"], req["id"]
    if op == "build":
        spec = req["spec"]
        EXCHANGE = req.get("exchangeDirectory")
        mismatches = [{"setting": "x", "spec": "a", "backend": "b", "affects": [1]}] if FAULT == "affects" else []
        send({"id": rid, "mismatches": mismatches, "runtime": {"fake": "yes"}})
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
    if PROTOCOL >= 2:
        opt = spec["optimizer"]
        slots = ["m", "v"] if opt["type"] == "adam" else (["momentum"] if opt["momentum"] > 0 else [])
        count = updates + (1 if op == "step" else 0)
        state.append({"kind": "optimizerStep", "site": "", "tensor": tensor([], 2.5 if FAULT == "badcount" and op == "step" and req["step"] == AT else count)})
        state += [{"kind": "optimizerSlot", "site": f"{n}/{slot}", "tensor": tensor(s)} for n, s in params for slot in slots]
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
    if PROTOCOL < 2 and want & OPTIMIZER_KINDS:
        send({"id": rid, "error": {"message": f"protocol 1 has no kinds {sorted(want & OPTIMIZER_KINDS)}"}})
        continue
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
    if strikes and FAULT == "orphan":
        subprocess.Popen(["sleep", SLEEP], stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"fake worker: exiting with a child holding stdout in step {step}", file=sys.stderr, flush=True)
        os._exit(7)
    if strikes and FAULT in ("setsid", "spawnhang"):
        prefix = ["setsid"] if FAULT == "setsid" else []
        subprocess.Popen(prefix + ["sleep", SLEEP], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"fake worker: started a child and hangs in step {step}", file=sys.stderr, flush=True)
        time.sleep(3600)
    if strikes and FAULT == "endless":
        block = "A" * (1 << 20)
        while True:
            sys.stdout.write(block)
    if strikes and FAULT == "bigline":
        sys.stdout.write("B" * (100 << 20) + "\n")
        sys.stdout.flush()
        continue
    if strikes and FAULT == "deep":
        sys.stdout.write(json.dumps({"id": rid, "entries": [], "x": json.loads("[" * 70 + "]" * 70)}) + "\n")
        sys.stdout.flush()
        continue
    if strikes and FAULT == "escapes":
        send({"id": rid, "error": {"message": f"failed {FORGED}"}})
        continue
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
        entries += [e for e in state if e["kind"] in want and not (strikes and FAULT == "noslots" and e["kind"] in OPTIMIZER_KINDS)]
        updates += 1
        if strikes and FAULT == "base64":
            entries[0]["tensor"]["data"] = "@@not base64@@"
        if strikes and FAULT == "bytes":
            entries[0]["tensor"]["data"] = base64.b64encode(b"abc").decode()
        if strikes and FAULT in ("devzero", "fifo", "symlink", "outside", "short"):
            entries[0]["tensor"] = {"dtype": "float32", "shape": [], "file": answer_file(FAULT)}
        if strikes and FAULT in ("hugeshape", "negshape"):
            entries[0]["tensor"]["shape"] = [2147483647, 2147483647] if FAULT == "hugeshape" else [-1]
        send({"id": rid, "entries": entries, "computeMs": 0.1})
    else:
        entries = [{"kind": "evalLoss", "site": "", "tensor": tensor([], math.log(classes))},
                   {"kind": "evalAccuracy", "site": "", "tensor": tensor([], 0.0)}]
        if "evalOutput" in want:
            entries += [{"kind": "evalOutput", "site": cid, "tensor": tensor([rows, w])} for cid, l, w in calls]
        send({"id": rid, "entries": entries})
