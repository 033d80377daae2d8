"""The PyTorch adapter answering a wrong record from step 3 on, after two right ones: the lie is named by the spec's
name (shape, missing, kind, twice), so the in-process host's check of each new answer layout is what stops it. `reorder`
is no lie: the right entries, in another order at every step, so every step's answer has a new layout."""
import os

from parity_adapter import load

failing_adapter = load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "failing_adapter.py"))
LYING_STEP = 3
describe = failing_adapter.describe


def lie(kind, entries):
    entries = list(entries)
    if kind == "shape":  # the first forward output without its last row
        i = next(i for i, e in enumerate(entries) if e[0] == "forward")
        entries[i] = (entries[i][0], entries[i][1], entries[i][2][:-1])
    elif kind == "missing":  # no parameter gradients
        entries = [e for e in entries if e[0] != "parameterGradient"]
    elif kind == "kind":
        entries.append(("bogusKind", "", entries[0][2]))
    elif kind == "twice":
        entries.append(next(e for e in entries if e[0] == "loss"))
    return entries


def reorder(step, entries):
    """The entries with two of them swapped, a different pair at each step."""
    entries = list(entries)
    i, j = step % len(entries), (step // len(entries) + 1 + step) % len(entries)
    entries[i], entries[j] = entries[j], entries[i]
    return entries


class Lying(failing_adapter.Failing):
    def __init__(self, model, kind):
        super().__init__(model, check=lambda step: None)
        self.kind = kind

    def step(self, inputs, labels, capture):
        entries = super().step(inputs, labels, capture)
        if self.kind == "reorder":
            return reorder(self.steps, entries)
        return lie(self.kind, entries) if self.steps >= LYING_STEP else entries


def build(spec, dtype, device, threads):
    return Lying(failing_adapter.torch_adapter.build(spec, dtype, device, threads), spec["name"])
