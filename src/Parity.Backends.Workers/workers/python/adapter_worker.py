"""The stdio shell of the worker protocol (docs/worker-protocol.md, protocol 2) around any Parity Python adapter.

Reads one JSON request per line on stdin, writes one JSON response per line on stdout; logs go to stderr. Everything
framework-specific is in the adapter module (docs/python-adapters.md); this shell only frames requests, decodes and
encodes tensors (inline base64 or files in the exchange directory) and times steps.

    python3 adapter_worker.py ADAPTER.py
"""
import base64
import json
import math
import os
import queue
import sys
import threading
import time

from parity_adapter import AdapterError, load

PROTOCOL = 2


def log(*args):
    print("[python worker]", *args, file=sys.stderr, flush=True)


try:
    import numpy as np
except ImportError as e:  # no handshake without numpy: the harness reports this stderr line
    log(f"cannot import numpy ({e}); every Python adapter exchanges numpy arrays (on Debian: python3-numpy)")
    sys.exit(3)


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


class Tensors:
    """Tensor objects of the protocol (section 4): little-endian bytes inline in base64, or a file in the exchange
    directory above the threshold (both set by build)."""

    NUMPY = {"float32": "<f4", "float64": "<f8"}

    def __init__(self):
        self.directory = None
        self.threshold = None
        self.count = 0

    def encode(self, array, dtype_name):
        arr = np.asarray(array, dtype=self.NUMPY[dtype_name], order="C")
        if self.directory and self.threshold is not None and arr.nbytes > self.threshold:
            self.count += 1
            path = os.path.join(self.directory, f"answer-{os.getpid()}-{self.count}.bin")
            arr.tofile(path)
            return {"dtype": dtype_name, "shape": list(arr.shape), "file": path}
        return {"dtype": dtype_name, "shape": list(arr.shape), "data": base64.b64encode(arr.tobytes()).decode("ascii")}

    def decode(self, obj, what):
        try:
            np_dtype = self.NUMPY[obj["dtype"]]
            shape = [int(d) for d in obj["shape"]]
            if "data" in obj:
                arr = np.frombuffer(base64.b64decode(obj["data"], validate=True), dtype=np_dtype)
            else:
                arr = np.fromfile(obj["file"], dtype=np_dtype)
        except (KeyError, TypeError, ValueError, OSError) as e:
            raise AdapterError(f"{what}: malformed tensor ({e})")
        if arr.size != math.prod(shape):
            raise AdapterError(f"{what}: {arr.nbytes} bytes do not fill shape {shape} of {obj['dtype']}")
        return arr.reshape(shape)


class Worker:
    def __init__(self, adapter):
        self.adapter = adapter
        self.model = None
        self.dtype = None
        self.tensors = Tensors()

    def entries(self, items):
        return [{"kind": k, "site": s, "tensor": self.tensors.encode(a, self.dtype)} for k, s, a in items]

    def batch(self, req):
        return self.tensors.decode(req["inputs"], "inputs"), req["labels"]

    def targets(self, req):
        """The batch's float targets as keyword arguments: only when the request carries them (a loss on the data's own
        targets), so an adapter without losses beyond cross-entropy keeps its three-argument step."""
        return {"targets": self.tensors.decode(req["targets"], "targets")} if "targets" in req else {}

    def step(self, req):
        """The adapter's step; the harness's dropout masks (by call id) are passed only when the batch has some, so an
        adapter of a model without dropout need not take them."""
        inputs, labels = self.batch(req)
        capture = req.get("capture", [])
        masks = {call: self.tensors.decode(t, f"dropoutMasks.{call}") for call, t in (req.get("dropoutMasks") or {}).items()}
        extra = self.targets(req)
        return self.model.step(inputs, labels, capture, masks, **extra) if masks else self.model.step(inputs, labels, capture, **extra)

    def handle(self, req):
        op = req.get("op")
        if op == "build":
            self.tensors.directory = req.get("exchangeDirectory")
            self.tensors.threshold = req.get("fileThreshold")
            self.dtype = req.get("dtype") or req["spec"]["dtype"]
            self.model = self.adapter.build(req["spec"], self.dtype, req.get("device"), req.get("threads"))
            return {"mismatches": self.model.mismatches, "runtime": self.model.runtime}
        if op == "shutdown":
            return {}
        if self.model is None:
            raise AdapterError(f"'{op}' before 'build'")
        if op == "load_state":
            self.model.load_state([(e["kind"], e["site"], self.tensors.decode(e["tensor"], f"{e['kind']}:{e['site']}")) for e in req["entries"]])
            return {}
        if op == "read_state":
            return {"entries": self.entries(self.model.read_state())}
        if op == "step":
            start = time.perf_counter()
            result = {"entries": self.entries(self.step(req))}
            result["computeMs"] = (time.perf_counter() - start) * 1000.0
            return result
        if op == "evaluate":
            inputs, labels = self.batch(req)
            return {"entries": self.entries(self.model.evaluate(inputs, labels, req.get("capture", []), **self.targets(req)))}
        raise AdapterError(f"unknown op '{op}'")


def send(obj):
    sys.stdout.buffer.write(json.dumps(obj, separators=(",", ":")).encode("utf-8") + b"\n")
    sys.stdout.buffer.flush()


def main(adapter_path):
    watch_harness()
    try:
        adapter = load(adapter_path)
    except ImportError as e:  # no handshake without the framework: the harness reports this stderr line
        log(str(e))
        sys.exit(3)
    send({"type": "ready", "protocol": PROTOCOL, **adapter.describe()})
    worker = Worker(adapter)
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
        except AdapterError as e:
            send({"id": req_id, "error": {"message": str(e)}})
        except Exception as e:  # a framework error is an answer too, with the traceback on stderr
            import traceback
            traceback.print_exc(file=sys.stderr)
            send({"id": req_id, "error": {"message": f"{type(e).__name__}: {e}"}})
        if req_id is not None and isinstance(req, dict) and req.get("op") == "shutdown":
            # Exit now: a normal interpreter exit would abort (code 134) on the stdin thread still blocked in a read.
            sys.stdout.flush()
            os._exit(0)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        log("usage: adapter_worker.py ADAPTER.py")
        sys.exit(2)
    main(sys.argv[1])
