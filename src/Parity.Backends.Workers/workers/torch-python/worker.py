#!/usr/bin/env python3
"""Parity worker for PyTorch (docs/worker-protocol.md, protocol 2).

Reads one JSON request per line on stdin, writes one JSON response per line on stdout; logs go to
stderr. The canonical spec is already in PyTorch's conventions (docs/conventions.md: linear weight
[out, in], BatchNorm momentum = weight of the new statistic, eps inside the sqrt, unbiased running
variance, Adam with eps added to sqrt(v_hat)), so the mapping below is the identity except where
PyTorch cannot express the spec, which is declared in the build response.
"""
import base64
import json
import math
import os
import queue
import sys
import threading
import time

PROTOCOL = 2
# Where and above which size (raw bytes) answers carry tensors as files; set by build (docs/worker-protocol.md).
EXCHANGE = {"directory": None, "threshold": None, "count": 0}


def log(*args):
    print("[torch-python]", *args, file=sys.stderr, flush=True)


def watch_harness():
    """Exits as soon as the harness is gone, even in the middle of a step (docs/worker-protocol.md, "Process lifetime").

    The harness is the parent: when it dies the worker is re-parented. Polled from a daemon thread, since the main
    thread may be busy in a long step.
    """
    parent = os.getppid()

    def poll():
        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=poll, name="watch harness", daemon=True).start()


def requests():
    """Request lines from stdin, read by a thread that ends the process at end of stdin: nobody waits for answers then."""
    lines = queue.Queue()

    def read():
        for line in sys.stdin.buffer:
            lines.put(line)
        os._exit(0)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    while True:
        yield lines.get()


watch_harness()

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # no handshake without torch: the harness reports this stderr line
    log(f"cannot import PyTorch ({e}); on Debian install python3-torch (scripts/setup)")
    sys.exit(3)

DTYPES = {"float32": (torch.float32, "<f4"), "float64": (torch.float64, "<f8")}
EVAL_KINDS = {"evalOutput", "evalLoss", "evalAccuracy"}
# Canonical optimizer slot -> its key in torch.optim's per-parameter state (docs/worker-protocol.md section 5).
SLOT_STATE = {"m": "exp_avg", "v": "exp_avg_sq", "momentum": "momentum_buffer"}


class WorkerError(Exception):
    """A request the worker refuses; becomes {"id", "error": {"message"}}."""


def encode(t, dtype_name):
    """A tensor object: little-endian bytes in base64, or a file in the exchange directory above the threshold."""
    arr = t.detach().to("cpu").contiguous().numpy().astype(DTYPES[dtype_name][1], copy=False)
    if EXCHANGE["directory"] and EXCHANGE["threshold"] is not None and arr.nbytes > EXCHANGE["threshold"]:
        EXCHANGE["count"] += 1
        path = os.path.join(EXCHANGE["directory"], f"answer-{os.getpid()}-{EXCHANGE['count']}.bin")
        arr.tofile(path)
        return {"dtype": dtype_name, "shape": list(arr.shape), "file": path}
    return {"dtype": dtype_name, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode(obj, what, device):
    try:
        np_dtype = DTYPES[obj["dtype"]][1]
        shape = [int(d) for d in obj["shape"]]
        if "data" in obj:
            arr = np.frombuffer(base64.b64decode(obj["data"], validate=True), dtype=np_dtype)
        else:
            arr = np.fromfile(obj["file"], dtype=np_dtype)
    except (KeyError, TypeError, ValueError, OSError) as e:
        raise WorkerError(f"{what}: malformed tensor ({e})")
    if arr.size != math.prod(shape):
        raise WorkerError(f"{what}: {arr.nbytes} bytes do not fill shape {shape} of {obj['dtype']}")
    return torch.from_numpy(arr.reshape(shape).copy()).to(device)


def init_tensor(w, init, fan_in, fan_out, is_bias):
    """Framework init: PyTorch's own seeded initializers for the spec's initializer names."""
    kind = init["type"]
    with torch.no_grad():
        if kind == "zeros":
            nn.init.zeros_(w)
        elif kind == "ones":
            nn.init.ones_(w)
        elif kind == "he_normal":
            nn.init.normal_(w, 0.0, math.sqrt(2.0 / fan_in))  # = kaiming_normal_ (fan_in, relu) [P4]
        elif kind == "he_normal_truncated":
            # Keras he_normal: truncated at 2 sigma, sigma = sqrt(2/fan_in)/0.87962566 [K2]
            s = math.sqrt(2.0 / fan_in) / 0.87962566103423978
            nn.init.trunc_normal_(w, 0.0, s, -2 * s, 2 * s)
        elif kind == "lecun_normal":
            nn.init.normal_(w, 0.0, math.sqrt(1.0 / fan_in))
        elif kind == "glorot_uniform":
            b = math.sqrt(6.0 / (fan_in + fan_out))
            nn.init.uniform_(w, -b, b)
        elif kind == "pytorch_default":
            b = 1.0 / math.sqrt(fan_in)  # nn.Linear.reset_parameters bound for weight and bias [P3]
            nn.init.uniform_(w, -b, b)
        elif kind == "normal":
            nn.init.normal_(w, 0.0, float(init["std"]))
        else:
            raise WorkerError(f"unknown initializer '{kind}'")


class Model:
    def __init__(self, spec, dtype_name, device):
        self.spec = spec
        self.dtype_name = dtype_name
        self.dtype = DTYPES[dtype_name][0]
        self.device = device
        self.mismatches = []
        model = spec["model"]
        framework_init = spec["init"]["mode"] == "framework"
        if framework_init:
            torch.manual_seed(int(spec["init"]["seed"]) & 0xFFFFFFFFFFFFFFFF)
        self.modules = {}
        self.params = []  # (canonical name, parameter)
        self.batchnorms = []  # (instance name, module)
        for layer in model["layers"]:
            name, kind = layer["name"], layer["type"]
            if kind == "linear":
                m = nn.Linear(layer["in"], layer["out"], bias=layer["bias"])
                if framework_init:
                    init_tensor(m.weight, layer["init"]["weight"], layer["in"], layer["out"], False)
                    if layer["bias"]:
                        init_tensor(m.bias, layer["init"]["bias"], layer["in"], layer["out"], True)
                self.params.append((f"{name}.weight", m.weight))
                if layer["bias"]:
                    self.params.append((f"{name}.bias", m.bias))
            elif kind == "batchnorm":
                # PyTorch momentum is the canonical momentum; eps inside the sqrt [P1].
                m = nn.BatchNorm1d(layer["features"], eps=layer["eps"], momentum=layer["momentum"], affine=layer["affine"])
                if layer["affine"]:
                    self.params += [(f"{name}.gamma", m.weight), (f"{name}.beta", m.bias)]
                self.batchnorms.append((name, m))
                if layer["runningVariance"] == "biased":
                    self.mismatches.append({
                        "setting": f"model.layers[{name}].runningVariance", "spec": "biased (1/N) batch variance into the running variance",
                        "backend": "torch.nn.BatchNorm1d always stores the unbiased (1/(N-1)) batch variance",
                        "value": "unbiased", "affects": ["runningVariance", "evalOutput", "evalLoss", "evalAccuracy"]})
            elif kind == "layernorm":
                m = nn.LayerNorm(layer["features"], eps=layer["eps"], elementwise_affine=layer["affine"])
                if layer["affine"]:
                    self.params += [(f"{name}.gamma", m.weight), (f"{name}.beta", m.bias)]
            elif kind == "relu":
                m = nn.ReLU()
            elif kind == "identity":
                m = nn.Identity()
            elif kind == "tanh":
                m = nn.Tanh()
            elif kind == "sigmoid":
                m = nn.Sigmoid()
            elif kind == "leaky_relu":
                # The slope and alpha are passed as written, so PyTorch's defaults (0.01, 1.0) never apply [P7].
                m = nn.LeakyReLU(negative_slope=layer["slope"])
            elif kind == "gelu":
                m = nn.GELU(approximate="none" if layer["approximation"] == "exact" else "tanh")
            elif kind == "silu":
                m = nn.SiLU()
            elif kind == "elu":
                m = nn.ELU(alpha=layer["alpha"])
            else:
                raise WorkerError(f"model.layers[{name}]: unsupported layer type '{kind}'")
            self.modules[name] = m.to(device=device, dtype=self.dtype)
        self.calls = [(c["id"], c["layer"]) for c in model["calls"]]
        self.bn_instances = {n for n, _ in self.batchnorms}
        opt = spec["optimizer"]
        params = [p for _, p in self.params]
        self.updates = 0  # optimizer steps taken: torch.optim.SGD keeps no count of its own
        if opt["type"] == "sgd":
            # PyTorch SGD: v = mu v + g; p -= lr v (dampening 0, not Nesterov): the canonical form.
            self.optimizer = torch.optim.SGD(params, lr=opt["lr"], momentum=opt["momentum"])
            self.slots = ["momentum"] if opt["momentum"] > 0 else []
        elif opt["type"] == "adam":
            self.optimizer = torch.optim.Adam(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])
            self.slots = ["m", "v"]
            if opt.get("betaPrecision", "float64") == "float32":
                self.mismatches.append({
                    "setting": "optimizer.betaPrecision", "spec": "float32: bias correction from float32 powers of beta",
                    "backend": "torch.optim.Adam forms 1 - beta and 1 - beta^t from Python floats (float64) [P5]", "value": "float64",
                    "affects": ["optimizerSlot", "parameter"]})
            if opt["epsilonForm"] == "epsilonHat":
                self.mismatches.append({
                    "setting": "optimizer.epsilonForm", "spec": "epsilonHat: lr*sqrt(1-b2^t)/(1-b1^t) * m/(sqrt(v)+eps)",
                    "backend": "torch.optim.Adam adds eps to sqrt(v_hat) [P5]", "value": "sqrtVHat",
                    "affects": ["parameter", "runningMean", "runningVariance", "forward", "loss", "outputGradient",
                                "parameterGradient", "optimizerSlot", "evalOutput", "evalLoss", "evalAccuracy"]})
        else:
            raise WorkerError(f"optimizer: unsupported type '{opt['type']}'")

    def set_mode(self, training):
        for m in self.modules.values():
            m.train(training)

    def load_state(self, entries):
        params = dict(self.params)
        bns = dict(self.batchnorms)
        with torch.no_grad():
            for e in entries:
                kind, site = e["kind"], e["site"]
                t = decode(e["tensor"], f"{kind}:{site}", self.device).to(self.dtype)
                if kind == "parameter" and site in params:
                    target = params[site]
                elif kind == "runningMean" and site in bns:
                    target = bns[site].running_mean
                elif kind == "runningVariance" and site in bns:
                    target = bns[site].running_var
                else:
                    raise WorkerError(f"load_state: unknown entry {kind}:{site}")
                if tuple(target.shape) != tuple(t.shape):
                    raise WorkerError(f"load_state: {kind}:{site} has shape {list(t.shape)}; the model has {list(target.shape)}")
                target.copy_(t)

    def state_entries(self):
        out = [("parameter", n, p) for n, p in self.params]
        for n, m in self.batchnorms:
            out += [("runningMean", n, m.running_mean), ("runningVariance", n, m.running_var)]
        return out + self.optimizer_entries()

    def optimizer_entries(self):
        """The update count and every slot, read from optimizer.state[p].

        torch.optim creates a parameter's state at its first step (Adam's exp_avg and exp_avg_sq as zeros, then updated;
        SGD's momentum_buffer as a clone of the first gradient), so before it the slots are the canonical zeros. exp_avg
        and exp_avg_sq are the biased moments (bias correction is applied only in the update), momentum_buffer is
        v = mu v + g. Adam counts its steps per parameter in 'step' (a tensor since torch 1.12); SGD counts none.
        """
        first = self.optimizer.state.get(self.params[0][1], {}) if self.params else {}
        count = float(first["step"]) if "step" in first else float(self.updates)
        out = [("optimizerStep", "", torch.tensor(count, dtype=self.dtype))]
        for name, p in self.params:
            state = self.optimizer.state.get(p, {})
            for slot in self.slots:
                value = state.get(SLOT_STATE[slot])
                out.append(("optimizerSlot", f"{name}/{slot}", torch.zeros_like(p) if value is None else value))
        return out

    def step(self, x, y, capture):
        want = set(capture)
        entries = []
        self.set_mode(True)
        self.optimizer.zero_grad(set_to_none=True)
        h = x
        outputs = []
        for call_id, layer in self.calls:
            if layer in self.bn_instances and ({"batchMean", "batchVariance"} & want):
                # The statistics BatchNorm1d normalizes with: mean and biased variance of the call input [P2].
                with torch.no_grad():
                    if "batchMean" in want:
                        entries.append(("batchMean", call_id, h.mean(0)))
                    if "batchVariance" in want:
                        entries.append(("batchVariance", call_id, h.var(0, unbiased=False)))
            h = self.modules[layer](h)
            if "outputGradient" in want:
                h.retain_grad()
            outputs.append((call_id, h))
            if "forward" in want:
                entries.append(("forward", call_id, h))
        loss = F.cross_entropy(h, y)  # mean of log_softmax + NLL on the logits [P6]
        accuracy = (h.argmax(1) == y).to(self.dtype).mean()
        loss.backward()
        entries += [("loss", "", loss), ("trainAccuracy", "", accuracy)]
        if "outputGradient" in want:
            entries += [("outputGradient", cid, o.grad) for cid, o in outputs]
        if "parameterGradient" in want:
            entries += [("parameterGradient", n, p.grad.clone()) for n, p in self.params]
        self.optimizer.step()
        self.updates += 1
        for kind, site, t in self.state_entries():
            if kind in want:
                entries.append((kind, site, t))
        return entries

    @torch.no_grad()
    def evaluate(self, x, y, capture):
        want = set(capture)
        entries = []
        self.set_mode(False)
        try:
            h = x
            for call_id, layer in self.calls:
                h = self.modules[layer](h)
                if "evalOutput" in want:
                    entries.append(("evalOutput", call_id, h))
            entries.append(("evalLoss", "", F.cross_entropy(h, y)))
            entries.append(("evalAccuracy", "", (h.argmax(1) == y).to(self.dtype).mean()))
        finally:
            self.set_mode(True)
        return entries


def versions():
    v = {"torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0]}
    if torch.cuda.is_available():
        v["cuda"] = torch.version.cuda or "unknown"
        v["gpu"] = torch.cuda.get_device_name(0)
    try:
        import re
        m = re.search(r"BLAS_INFO=([^,\s]+)", torch.__config__.show())
        v["blas"] = m.group(1) if m else "unknown"
    except Exception:  # only informational
        pass
    return v


class Worker:
    def __init__(self):
        self.model = None

    def entries(self, items):
        return [{"kind": k, "site": s, "tensor": encode(t, self.model.dtype_name)} for k, s, t in items]

    def batch(self, req):
        x = decode(req["inputs"], "inputs", self.model.device).to(self.model.dtype)
        y = torch.tensor(req["labels"], dtype=torch.long, device=self.model.device)
        if x.shape[0] != y.shape[0]:
            raise WorkerError(f"inputs have {x.shape[0]} rows but there are {y.shape[0]} labels")
        return x, y

    def handle(self, req):
        op = req.get("op")
        if op == "build":
            dtype = req.get("dtype") or req["spec"]["dtype"]
            if dtype not in DTYPES:
                raise WorkerError(f"unsupported dtype '{dtype}'")
            device = req.get("device") or "cpu"
            if device.startswith("cuda") and not torch.cuda.is_available():
                raise WorkerError(f"device '{device}' requested but torch {torch.__version__} sees no CUDA device")
            if req.get("threads"):
                torch.set_num_threads(int(req["threads"]))
            EXCHANGE["directory"] = req.get("exchangeDirectory")
            EXCHANGE["threshold"] = req.get("fileThreshold")
            self.model = Model(req["spec"], dtype, torch.device(device))
            runtime = {"device": device, "threads": str(torch.get_num_threads())}
            if device.startswith("cuda"):
                runtime["gpu"] = torch.cuda.get_device_name(torch.device(device))
            return {"mismatches": self.model.mismatches, "runtime": runtime}
        if op == "shutdown":
            return {}
        if self.model is None:
            raise WorkerError(f"'{op}' before 'build'")
        if op == "load_state":
            self.model.load_state(req["entries"])
            return {}
        if op == "read_state":
            return {"entries": self.entries(self.model.state_entries())}
        if op == "step":
            x, y = self.batch(req)
            start = time.perf_counter()
            items = self.model.step(x, y, req.get("capture", []))
            result = {"entries": self.entries(items)}
            if self.model.device.type == "cuda":
                torch.cuda.synchronize()
            result["computeMs"] = (time.perf_counter() - start) * 1000.0
            return result
        if op == "evaluate":
            x, y = self.batch(req)
            return {"entries": self.entries(self.model.evaluate(x, y, req.get("capture", [])))}
        raise WorkerError(f"unknown op '{op}'")


def send(obj):
    sys.stdout.buffer.write(json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def main():
    send({"type": "ready", "protocol": PROTOCOL, "framework": "pytorch", "version": torch.__version__, "versions": versions(),
          "capabilities": {"dtypes": ["float32", "float64"],
                           "devices": ["cpu"] + (["cuda"] if torch.cuda.is_available() else []),
                           "training": True, "sharedInstances": True, "frameworkInit": True}})
    worker = Worker()
    for line in requests():
        if not line.strip():
            continue
        req_id, req = None, None
        try:
            req = json.loads(line)
            req_id = req.get("id")
            result = worker.handle(req)
            result["id"] = req_id
            send(result)
        except WorkerError as e:
            send({"id": req_id, "error": {"message": str(e)}})
        except Exception as e:  # a framework error is an answer too, with the traceback on stderr
            import traceback
            traceback.print_exc(file=sys.stderr)
            send({"id": req_id, "error": {"message": f"{type(e).__name__}: {e}"}})
        if req_id is not None and isinstance(req, dict) and req.get("op") == "shutdown":
            break


if __name__ == "__main__":
    main()
