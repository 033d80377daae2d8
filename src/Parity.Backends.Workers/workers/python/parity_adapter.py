"""What every Parity Python adapter shares with its two hosts (docs/python-adapters.md).

An adapter is one module that maps the canonical spec onto a Python framework. The same module runs as a worker
(adapter_worker.py, the stdio shell of the worker protocol) and in the harness's own process (pythonnet_host.py,
the torch-pythonnet backend), so there is one implementation of a framework's mapping.
"""
import importlib.util
import os
import sys


class AdapterError(Exception):
    """A request the adapter refuses (an unsupported layer, dtype or device): reported with its message only."""


def load(path):
    """Imports the adapter module at `path` (a .py file) under its file name; its folder joins sys.path first, so it may
    import modules beside it."""
    path = os.path.abspath(path)
    name = os.path.splitext(os.path.basename(path))[0]
    if name in sys.modules:
        return sys.modules[name]
    folder = os.path.dirname(path)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"no Python module at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
