"""The PyTorch adapter stuck in a Python loop at one step: a call that never returns, which the in-process backend's
time limit must interrupt."""
import os

from parity_adapter import load

failing_adapter = load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "failing_adapter.py"))
HANGING_STEP = 2
describe = failing_adapter.describe


def hang_at(step):
    while step == HANGING_STEP:
        pass


def build(spec, dtype, device, threads):
    return failing_adapter.Failing(failing_adapter.torch_adapter.build(spec, dtype, device, threads), check=hang_at)
