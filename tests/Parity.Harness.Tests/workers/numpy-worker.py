#!/usr/bin/env python3
"""A framework-free Parity worker (protocol 2) in numpy, written from docs/worker-protocol.md, docs/trace.md
and docs/spec.md alone.

It trains the canonical model in float32 or float64: linear (weight [out, in], y = x W^T + b), batchnorm (batch statistics
in train mode, running statistics updated once per call), layernorm, relu, identity, mean softmax cross-entropy,
SGD with momentum (PyTorch form) and Adam (both epsilon forms, constants formed in float64 then rounded).

Bug injection, for the harness's step-check tests: `--bug KIND --from-step K` makes the math wrong from step K on
(before it every step is correct); what the worker reports is always what it computed.
  adam-eps-inside                 Adam divides by sqrt(v_hat + eps) instead of sqrt(v_hat) + eps
  adam-bias-correction            Adam skips the bias correction of m (uses m for m_hat)
  bn-eps-outside                  batchnorm normalizes with 1 / (sqrt(var) + eps) instead of 1 / sqrt(var + eps)
  bn-variance-unbiased-normalize  batchnorm normalizes with the unbiased (1/(N-1)) batch variance
  running-momentum-flipped        running statistics weigh the new batch statistic with 1 - momentum
  running-stats-frozen            running statistics stop updating
  weight-decay                    every linear weight's gradient gets 5e-4 * weight added
  grad-scale                      one linear layer's gradients (--layer NAME, default the last linear) are x 1.001
"""
import argparse
import base64
import json
import os
import sys
import time

import numpy as np

REAL = np.float32  # the session's dtype, set by build
BUGS = ("adam-eps-inside", "adam-bias-correction", "bn-eps-outside", "bn-variance-unbiased-normalize",
        "running-momentum-flipped", "running-stats-frozen", "weight-decay", "grad-scale")


def real(x):
    """A constant formed in float64 (Python float), rounded once to the session's dtype."""
    return REAL(x)


def unbiased(var, n):
    """The biased batch variance of n rows as the unbiased estimate; a batch of one keeps its (zero) variance."""
    return var * real(n / (n - 1)) if n > 1 else var


class Bug:
    def __init__(self, kind, from_step, layer):
        self.kind, self.from_step, self.layer = kind, from_step, layer
        self.step = 0

    def on(self, kind):
        return self.kind == kind and self.step >= self.from_step


# ---- tensors (section 4) ----

class Tensors:
    def __init__(self):
        self.directory, self.threshold, self.count = None, 262144, 0

    def decode(self, t):
        dtype = {"float32": "<f4", "float64": "<f8"}[t["dtype"]]
        if "file" in t:
            with open(t["file"], "rb") as f:
                raw = f.read()
        else:
            raw = base64.b64decode(t["data"])
        return np.frombuffer(raw, dtype=dtype).astype(REAL).reshape(t["shape"])

    def encode(self, a):
        a = np.asarray(a, dtype=np.dtype(REAL).newbyteorder("<"))  # a scalar keeps its shape []
        raw = a.tobytes()
        t = {"dtype": a.dtype.name, "shape": list(a.shape)}
        if len(raw) > self.threshold and self.directory:
            self.count += 1
            path = os.path.join(self.directory, f"numpy-{os.getpid()}-{self.count}.bin")
            with open(path, "wb") as f:
                f.write(raw)
            t["file"] = path
        else:
            t["data"] = base64.b64encode(raw).decode("ascii")
        return t


# ---- the model ----

class Model:
    def __init__(self, spec, bug):
        self.bug = bug
        self.layers = {l["name"]: l for l in spec["model"]["layers"]}
        self.calls = spec["model"]["calls"]  # canonical: [{"id", "layer"}]
        self.params = {}  # "instance.local" -> array, in layer order
        self.running = {}  # instance -> {"runningMean": ..., "runningVariance": ...}
        for l in spec["model"]["layers"]:
            n, kind = l["name"], l["type"]
            if kind == "linear":
                self.params[n + ".weight"] = np.zeros((l["out"], l["in"]), REAL)
                if l["bias"]:
                    self.params[n + ".bias"] = np.zeros(l["out"], REAL)
            elif kind in ("batchnorm", "layernorm"):
                if l["affine"]:
                    self.params[n + ".gamma"] = np.ones(l["features"], REAL)
                    self.params[n + ".beta"] = np.zeros(l["features"], REAL)
                if kind == "batchnorm":
                    self.running[n] = {"runningMean": np.zeros(l["features"], REAL),
                                       "runningVariance": np.ones(l["features"], REAL)}
            elif kind not in ("relu", "identity"):
                raise ValueError(f"layer '{n}' has type '{kind}', which this worker does not implement")
        linears = [n for n, l in self.layers.items() if l["type"] == "linear"]
        self.scaled_layer = bug.layer or linears[-1]
        if self.scaled_layer not in linears:
            raise ValueError(f"--layer '{self.scaled_layer}' is not a linear layer of this model")

    def affine(self, name):
        return (self.params.get(name + ".gamma"), self.params.get(name + ".beta"))

    def forward(self, x, train):
        """Runs every call; returns the per-call outputs and what backward needs (a tape)."""
        outputs, tape, stats = [], [], []
        for call in self.calls:
            layer = self.layers[call["layer"]]
            name, kind = layer["name"], layer["type"]
            if kind == "linear":
                y = x @ self.params[name + ".weight"].T
                if layer["bias"]:
                    y = y + self.params[name + ".bias"]
                tape.append((x,))
            elif kind == "batchnorm":
                y, saved, stat = self.batchnorm(layer, x, train)
                tape.append(saved)
                if stat:
                    stats.append((call["id"], stat))
            elif kind == "layernorm":
                mean = x.mean(axis=1, keepdims=True)
                var = ((x - mean) ** 2).mean(axis=1, keepdims=True)
                inv = REAL(1) / np.sqrt(var + real(layer["eps"]))
                xhat = (x - mean) * inv
                gamma, beta = self.affine(name)
                y = xhat if gamma is None else xhat * gamma + beta
                tape.append((xhat, inv, x.shape[1]))
            elif kind == "relu":
                y = np.maximum(x, REAL(0))
                tape.append((x,))
            else:
                y = x
                tape.append(())
            outputs.append(y)
            x = y
        return outputs, tape, stats

    def batchnorm(self, layer, x, train):
        name, eps, n = layer["name"], real(layer["eps"]), x.shape[0]
        run = self.running[name]
        divisor = n  # of the variance: biased (1/N), what the canonical batchnorm normalizes with
        if train:
            mean = x.mean(axis=0)
            var = ((x - mean) ** 2).mean(axis=0)
            if self.bug.on("bn-variance-unbiased-normalize"):
                var, divisor = unbiased(var, n), max(n - 1, 1)
        else:
            mean, var = run["runningMean"], run["runningVariance"]
        if self.bug.on("bn-eps-outside"):
            inv = REAL(1) / (np.sqrt(var) + eps)
        else:
            inv = REAL(1) / np.sqrt(var + eps)
        xhat = (x - mean) * inv
        gamma, beta = self.affine(name)
        y = xhat if gamma is None else xhat * gamma + beta
        stat = None
        if train:
            self.update_running(layer, mean, var, n)
            stat = {"batchMean": mean, "batchVariance": var}
        return y, (xhat, inv, divisor), stat

    def update_running(self, layer, mean, var, n):
        if self.bug.on("running-stats-frozen"):
            return
        m = layer["momentum"]
        if self.bug.on("running-momentum-flipped"):
            m = 1 - m
        if layer["runningVariance"] == "unbiased" and not self.bug.on("bn-variance-unbiased-normalize"):
            var = unbiased(var, n)  # (a variance already unbiased by the bug is not corrected twice)
        run = self.running[layer["name"]]
        run["runningMean"] = real(1 - m) * run["runningMean"] + real(m) * mean
        run["runningVariance"] = real(1 - m) * run["runningVariance"] + real(m) * var

    def backward(self, dz, tape):
        """Returns the output gradient of every call and the gradient of every parameter (summed over calls)."""
        grads = {p: np.zeros_like(v) for p, v in self.params.items()}
        out_grads = [None] * len(self.calls)
        dy = dz
        for i in range(len(self.calls) - 1, -1, -1):
            out_grads[i] = dy
            layer = self.layers[self.calls[i]["layer"]]
            name, kind = layer["name"], layer["type"]
            if kind == "linear":
                (x,) = tape[i]
                grads[name + ".weight"] += dy.T @ x
                if layer["bias"]:
                    grads[name + ".bias"] += dy.sum(axis=0)
                dy = dy @ self.params[name + ".weight"]
            elif kind in ("batchnorm", "layernorm"):
                xhat, inv, divisor = tape[i]
                gamma, _ = self.affine(name)
                if gamma is not None:
                    grads[name + ".gamma"] += (dy * xhat).sum(axis=0)
                    grads[name + ".beta"] += dy.sum(axis=0)
                    dy = dy * gamma
                # d/dx of (x - mean) / sqrt(sum((x - mean)^2) / divisor + eps), statistics over the batch axis
                # (batchnorm) or the feature axis (layernorm)
                axis = 0 if kind == "batchnorm" else 1
                n = REAL(xhat.shape[axis])
                dy = inv * (dy - dy.sum(axis=axis, keepdims=True) / n
                            - xhat * (dy * xhat).sum(axis=axis, keepdims=True) / REAL(divisor))
            elif kind == "relu":
                (x,) = tape[i]
                dy = np.where(x > 0, dy, REAL(0))
        for p, w in self.params.items():
            if p.endswith(".weight") and self.bug.on("weight-decay"):
                grads[p] = grads[p] + real(5e-4) * w
            if p.startswith(self.scaled_layer + ".") and self.bug.on("grad-scale"):
                grads[p] = grads[p] * real(1.001)
        return out_grads, grads


def loss_and_gradient(logits, labels):
    """Mean softmax cross-entropy via log-sum-exp, the accuracy (first maximum) and d loss / d logits."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_softmax = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(n)
    loss = -log_softmax[rows, labels].mean(dtype=REAL)
    accuracy = REAL((logits.argmax(axis=1) == labels).mean())
    dz = np.exp(log_softmax)
    dz[rows, labels] -= REAL(1)
    return REAL(loss), accuracy, dz / REAL(n)


# ---- the optimizer ----

class Optimizer:
    def __init__(self, spec, params, bug):
        self.spec, self.bug, self.t = spec, bug, 0
        if spec.get("weightDecay") is not None:
            raise ValueError("optimizer.weightDecay is not implemented; this worker has no weight decay")
        # Written only when set (docs/spec.md, "Canonical JSON"): this worker implements none of them.
        for key in ("schedule", "clip", "nesterov", "momentumForm"):
            if key in spec:
                raise ValueError(f"optimizer.{key} is not implemented by this worker")
        if spec["type"] == "adam":
            if spec.get("betaPrecision", "float64") != "float64":
                raise ValueError("optimizer.betaPrecision 'float32' is not implemented; this worker forms the Adam "
                                 "constants in float64")
            names = ("m", "v")
        elif spec["type"] != "sgd":
            raise ValueError(f"optimizer '{spec['type']}' is not implemented; this worker has SGD and Adam")
        else:
            names = ("momentum",) if spec["momentum"] > 0 else ()
        self.slots = {f"{p}/{s}": np.zeros_like(v) for p, v in params.items() for s in names}

    def update(self, params, grads):
        self.t += 1
        o = self.spec
        for p, g in grads.items():
            if o["type"] == "sgd":
                step = g
                if o["momentum"] > 0:  # PyTorch form: v = mu v + g; p -= lr v
                    step = self.slots[p + "/momentum"] = real(o["momentum"]) * self.slots[p + "/momentum"] + g
                params[p] = params[p] - real(o["lr"]) * step
            else:
                params[p] = params[p] - self.adam_step(p, g)

    def adam_step(self, p, g):
        o, t = self.spec, self.t
        b1, b2 = o["beta1"], o["beta2"]
        m = self.slots[p + "/m"] = real(b1) * self.slots[p + "/m"] + real(1 - b1) * g
        v = self.slots[p + "/v"] = real(b2) * self.slots[p + "/v"] + real(1 - b2) * g * g
        # the bias corrections 1 - beta^t in float64, rounded where used; the bug leaves m uncorrected
        correction1 = 1.0 if self.bug.on("adam-bias-correction") else 1 - b1 ** t
        correction2 = 1 - b2 ** t
        if o["epsilonForm"] == "epsilonHat":  # p -= lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps)
            lr, m_hat, v_hat = real(o["lr"] * correction2 ** 0.5 / correction1), m, v
        else:  # p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
            lr, m_hat, v_hat = real(o["lr"]), m / real(correction1), v / real(correction2)
        eps = real(o["eps"])
        denom = np.sqrt(v_hat + eps) if self.bug.on("adam-eps-inside") else np.sqrt(v_hat) + eps
        return lr * m_hat / denom


# ---- the protocol (sections 2 and 3) ----

class Worker:
    def __init__(self, bug):
        self.bug, self.tensors = bug, Tensors()
        self.model = self.optimizer = None

    def build(self, r):
        global REAL
        REAL = {"float32": np.float32, "float64": np.float64}[r["dtype"]]
        spec = r["spec"]
        if spec["init"]["mode"] != "injected":
            raise ValueError("this worker has no initializers of its own; use init.mode 'injected'")
        self.tensors.directory, self.tensors.threshold = r["exchangeDirectory"], r["fileThreshold"]
        self.model = Model(spec, self.bug)
        self.optimizer = Optimizer(spec["optimizer"], self.model.params, self.bug)
        return {"mismatches": [], "runtime": {"device": "cpu", "numpy": np.__version__}}

    def load_state(self, r):
        for e in r["entries"]:
            value = self.tensors.decode(e["tensor"])
            if e["kind"] == "parameter":
                self.model.params[e["site"]] = value.copy()
            else:
                self.model.running[e["site"]][e["kind"]] = value.copy()
        return {}

    def state_entries(self, kinds):
        entries = []
        if "parameter" in kinds:
            entries += [("parameter", p, v) for p, v in self.model.params.items()]
        for bn, run in self.model.running.items():
            entries += [(k, bn, run[k]) for k in ("runningMean", "runningVariance") if k in kinds]
        if "optimizerStep" in kinds:
            entries.append(("optimizerStep", "", REAL(self.optimizer.t)))
        if "optimizerSlot" in kinds:
            entries += [("optimizerSlot", s, v) for s, v in self.optimizer.slots.items()]
        return entries

    def read_state(self, r):
        kinds = ("parameter", "runningMean", "runningVariance", "optimizerStep", "optimizerSlot")
        return {"entries": [self.entry(*e) for e in self.state_entries(kinds)]}

    def step(self, r):
        start = time.perf_counter()
        self.bug.step = r["step"]
        x, labels = self.tensors.decode(r["inputs"]), np.asarray(r["labels"])
        model, kinds = self.model, set(r["capture"])
        outputs, tape, stats = model.forward(x, train=True)
        loss, accuracy, dz = loss_and_gradient(outputs[-1], labels)
        out_grads, grads = model.backward(dz, tape)
        entries = [("loss", "", loss), ("trainAccuracy", "", accuracy)]
        ids = [c["id"] for c in model.calls]
        if "forward" in kinds:
            entries += list(zip(["forward"] * len(ids), ids, outputs))
        for call, stat in stats:
            entries += [(k, call, stat[k]) for k in ("batchMean", "batchVariance") if k in kinds]
        if "outputGradient" in kinds:
            entries += list(zip(["outputGradient"] * len(ids), ids, out_grads))
        if "parameterGradient" in kinds:
            entries += [("parameterGradient", p, g) for p, g in grads.items()]
        self.optimizer.update(model.params, grads)
        entries += self.state_entries(kinds)
        answer = {"entries": [self.entry(*e) for e in entries]}
        answer["computeMs"] = (time.perf_counter() - start) * 1000
        return answer

    def evaluate(self, r):
        self.bug.step = r["step"]
        x, labels = self.tensors.decode(r["inputs"]), np.asarray(r["labels"])
        outputs, _, _ = self.model.forward(x, train=False)
        loss, accuracy, _ = loss_and_gradient(outputs[-1], labels)
        entries = [("evalLoss", "", loss), ("evalAccuracy", "", accuracy)]
        if "evalOutput" in r["capture"]:
            entries += [("evalOutput", c["id"], y) for c, y in zip(self.model.calls, outputs)]
        return {"entries": [self.entry(*e) for e in entries]}

    def entry(self, kind, site, value):
        return {"kind": kind, "site": site, "tensor": self.tensors.encode(value)}


def send(obj):
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bug", choices=BUGS, help="the bug to inject")
    parser.add_argument("--from-step", type=int, default=1, help="first step the bug is active (default 1)")
    parser.add_argument("--layer", help="the linear layer whose gradients grad-scale scales")
    args = parser.parse_args()
    worker = Worker(Bug(args.bug, args.from_step, args.layer))
    send({"type": "ready", "protocol": 2, "framework": "numpy", "version": np.__version__,
          "versions": {"numpy": np.__version__, "python": sys.version.split()[0]},
          "capabilities": {"dtypes": ["float32", "float64"], "devices": ["cpu"], "training": True,
                           "sharedInstances": True, "frameworkInit": False}})
    ops = {"build": worker.build, "load_state": worker.load_state, "read_state": worker.read_state,
           "step": worker.step, "evaluate": worker.evaluate}
    for line in sys.stdin:  # ends at end of stdin: the harness went away
        if not line.strip():
            continue
        request = json.loads(line)
        if request["op"] == "shutdown":
            send({"id": request["id"]})
            return
        try:
            answer = ops[request["op"]](request)
        except Exception as e:  # a refusal, not a crash: the worker stays usable for shutdown
            print(f"numpy worker: {request['op']} failed: {e!r}", file=sys.stderr)
            answer = {"error": {"message": f"{type(e).__name__}: {e}"}}
        answer["id"] = request["id"]
        send(answer)


if __name__ == "__main__":
    main()
