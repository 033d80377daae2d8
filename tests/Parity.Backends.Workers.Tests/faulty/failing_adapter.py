"""The PyTorch adapter raising a Python exception at one step: a framework error in the middle of a run."""
import os

from parity_adapter import load

torch_adapter = load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "src", "Parity.Backends.Workers",
                                  "workers", "torch-python", "torch_adapter.py"))
FAILING_STEP = 3
describe = torch_adapter.describe


def check_step(step):
    if step == FAILING_STEP:
        raise RuntimeError(f"simulated framework error at step {step}")


class Failing:
    """The model, with `check(step)` called before each training step (1-based)."""

    def __init__(self, model, check=check_step):
        self.model = model
        self.check = check
        self.mismatches = model.mismatches
        self.runtime = model.runtime
        self.steps = 0

    def load_state(self, entries):
        self.model.load_state(entries)

    def read_state(self):
        return self.model.read_state()

    def step(self, inputs, labels, capture):
        self.steps += 1
        self.check(self.steps)
        return self.model.step(inputs, labels, capture)

    def evaluate(self, inputs, labels, capture):
        return self.model.evaluate(inputs, labels, capture)


def build(spec, dtype, device, threads):
    return Failing(torch_adapter.build(spec, dtype, device, threads))
