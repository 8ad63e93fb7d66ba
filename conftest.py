"""pytest configuration for the notebook tests (nbval).

The kernel that nbval starts inherits this process's environment, so the settings that make
notebook outputs reproducible are fixed here as well as in the Makefile.
"""

import os

import nbval.kernel

from scripts.kernel_start import start_with_retries

for _key, _value in {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TQDM_DISABLE": "1",
    "MPLBACKEND": "Agg",
    "PYTHONHASHSEED": "0",
}.items():
    os.environ.setdefault(_key, _value)

# Outputs that are noise rather than results: warnings on stderr, rich HTML tables (their text
# twin is still compared), and vector images that embed ids and dates.
_SKIP = ("stderr", "text/html", "image/svg+xml", "application/pdf", "application/javascript")


def pytest_collectstart(collector):
    if getattr(collector, "path", None) is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += _SKIP


# A kernel that dies before it answers has run nothing: start another (scripts/kernel_start.py).
# nbval's RunningKernel looks start_new_kernel up in its module on every call.
nbval.kernel.start_new_kernel = start_with_retries(nbval.kernel.start_new_kernel)
