"""Root test configuration (tests and doctests): one torch / OpenMP thread.

Two threads on two busy cores are far slower than one, and a single thread
keeps results reproducible.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import torch

torch.set_num_threads(1)
