"""The in-process host of a Parity Python adapter: the torch-pythonnet backend calls it through pythonnet.

Tensors cross without the worker protocol: the harness lends its arrays for the length of one call (pinned .NET
memory, seen here as numpy views through ctypes), the adapter copies what it keeps, and the answer's arrays are held
through the next call while the harness copies their elements from their addresses into its own arrays (one copy,
widening float32 to the harness's float64; for an adapter with `fresh_step_arrays`, a step's arrays other than the
state are copied beside the next step).

Run as a script it probes the interpreter for the backend's description, without loading anything into the harness:

    python3 pythonnet_host.py probe ADAPTER.py    # one JSON line: interpreter, libpython, sys.path, the adapter's describe()
"""
import ctypes
import json
import math
import sys
import sysconfig
import time

from parity_adapter import load

try:
    import numpy as np  # once: an import statement in a function costs microseconds a call inside pythonnet
except ImportError:  # the probe runs without numpy; the adapter's own import says what is missing
    np = None

# The harness's element types: Tensor values are float64, labels int32.
LENT = {"float64": (ctypes.c_double, "<f8"), "int32": (ctypes.c_int32, "<i4")}
# The dtypes an answer array may have as it is (compared by equality: a byte-swapped dtype differs).
NATIVE_FLOAT32, NATIVE_FLOAT64 = "=f4", "=f8"
# Their dtype.char, and the names the harness reads.
EXCHANGED = {"f": "float32", "d": "float64"}
# The most answer layouts a session remembers (the harness keeps as many: PythonAdapterSession.MaxLayouts).
LAYOUTS = 64


def lend(address, shape, kind):
    """A numpy view of harness memory at `address`, valid only during the call that lends it."""
    ctype, dtype = LENT[kind]
    count = math.prod(shape)
    if count == 0:
        return np.zeros(shape, dtype=dtype)
    return np.frombuffer((ctype * count).from_address(address), dtype=dtype).reshape(shape)


class Session:
    """One plan in one adapter session; every method is called with the GIL held."""

    def __init__(self, adapter_path, spec_json, dtype, device, threads):
        self.model = load(adapter_path).build(json.loads(spec_json), dtype, device, threads)
        self.answer = self.previous = []
        self.layouts = {}  # ((kind, site, shape, dtype char), ...) -> its number in this session
        self.numbered = 0  # layouts numbered so far: numbers are never reused

    def built(self):
        return json.dumps({"mismatches": self.model.mismatches, "runtime": self.model.runtime,
                           "freshStepArrays": bool(getattr(self.model, "fresh_step_arrays", False))})

    def load_state(self, keys_json, addresses):
        entries = [(kind, site, lend(address, shape, "float64")) for (kind, site, shape), address in zip(json.loads(keys_json), addresses)]
        self.model.load_state(entries)

    def read_state(self):
        return self.keep(self.model.read_state())

    @staticmethod
    def targets(address, rows, width):
        """The batch's float targets as keyword arguments, when lent (a loss on the data's own targets; else address 0)."""
        return {"targets": lend(address, (rows, width), "float64")} if address else {}

    def step(self, inputs, rows, features, labels, capture_json, masks_json, addresses, targets=0, width=0):
        x, y = lend(inputs, (rows, features), "float64"), lend(labels, (rows,), "int32")
        # The harness's dropout masks by call id, passed only when there are some (as the worker host does).
        masks = {call: lend(address, shape, "float64") for (call, shape), address in zip(json.loads(masks_json), addresses)}
        start = time.perf_counter()
        extra = self.targets(targets, rows, width)
        capture = json.loads(capture_json)
        entries = self.model.step(x, y, capture, masks, **extra) if masks else self.model.step(x, y, capture, **extra)
        return self.keep(entries, (time.perf_counter() - start) * 1000.0)

    def evaluate(self, inputs, rows, features, labels, capture_json, targets=0, width=0):
        x, y = lend(inputs, (rows, features), "float64"), lend(labels, (rows,), "int32")
        return self.keep(self.model.evaluate(x, y, json.loads(capture_json), **self.targets(targets, rows, width)))

    def keep(self, entries, compute_ms=None):
        """Holds the answer's arrays through the next call and returns, as JSON, the addresses of their elements, the
        number of the answer's layout (each entry's kind, site, shape and dtype; described in full the first time this
        session answers it) and the adapter's own step time in milliseconds (null outside a step). The harness checks a
        layout once, then copies each step's elements straight from those addresses into its own arrays (one copy,
        float32 widened to float64 by SIMD in .NET, no Python per array)."""
        arrays = [exchangeable(array) for _, _, array in entries]
        # dtype.char, not dtype.name: numpy computes the name in Python, a microsecond an array.
        signature = tuple((kind, site, array.shape, array.dtype.char) for (kind, site, _), array in zip(entries, arrays))
        layout = self.layouts.get(signature)
        described = "null"
        if layout is None:
            if len(self.layouts) == LAYOUTS:  # an adapter whose answers keep changing: forget, so memory stays flat
                self.layouts.clear()
            layout = self.layouts[signature] = self.numbered
            self.numbered += 1
            described = json.dumps([[kind, site, list(dims), EXCHANGED[char]] for kind, site, dims, char in signature])
        # The last answer's arrays live on through this call's: the harness may still be copying them (an adapter's
        # fresh_step_arrays), and waits for that copy before it calls again.
        self.previous, self.answer = self.answer, arrays
        timed = "null" if compute_ms is None else repr(compute_ms)
        addresses = ", ".join([str(address(array)) for array in arrays])
        return f'{{"layout": {layout}, "entries": {described}, "computeMs": {timed}, "addresses": [{addresses}]}}'


def address(array):
    """Where the elements of a C-contiguous array start: through the buffer protocol (a quarter of `array.ctypes.data`'s
    time), or through numpy's ctypes view for an array that cannot lend a writable buffer (read-only, or empty)."""
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError):
        return array.ctypes.data


def exchangeable(array):
    """The array as C-contiguous float32 or float64 in native byte order: as it is when it already is (a view of the
    framework's tensor, no copy), else converted (refused unless the conversion is safe, e.g. bool or int to float64)."""
    if type(array) is np.ndarray and array.flags.c_contiguous and (array.dtype == NATIVE_FLOAT32 or array.dtype == NATIVE_FLOAT64):
        return array  # the common case, decided without creating anything
    array = np.asarray(array)
    if array.dtype.name not in ("float32", "float64") or not array.dtype.isnative:
        array = array.astype(np.float64, casting="safe")
    # Not np.ascontiguousarray: it turns a 0-d array (a scalar such as the loss) into shape [1].
    return array if array.flags.c_contiguous else array.copy(order="C")


def probe(adapter_path):
    """What the backend needs before it loads this interpreter into the harness: where its shared libpython is, its
    module path, and the adapter's describe() (importing the adapter proves the framework imports)."""
    config = {k: sysconfig.get_config_var(k) for k in ("LIBDIR", "LDLIBRARY", "INSTSONAME", "MULTIARCH", "Py_ENABLE_SHARED")}
    adapter = load(adapter_path)
    return {"executable": sys.executable, "version": sys.version.split()[0], "prefix": sys.prefix,
            "path": [p for p in sys.path if p], "config": config, "adapter": adapter.describe()}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "probe":
        print("usage: pythonnet_host.py probe ADAPTER.py", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(probe(sys.argv[2])))
