#!/usr/bin/env python3
"""Parity worker for PyTorch: the stdio shell (../python/adapter_worker.py) serving the PyTorch adapter (torch_adapter.py).

The PyTorch mapping lives in torch_adapter.py only; the torch-pythonnet backend runs the same module in process.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))

import adapter_worker  # noqa: E402  (found through the path set above)

if __name__ == "__main__":
    adapter_worker.main(os.path.join(HERE, "torch_adapter.py"))
