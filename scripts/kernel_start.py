"""Start a Jupyter kernel again when it dies before it answers.

A kernel can die on startup for reasons that have nothing to do with the notebook it will run:
with two test workers starting kernels at once, the ports jupyter_client picked for one kernel
can be taken before that kernel binds them, and the kernel exits with "Address already in use".
The notebook has not run a single cell then, so starting a fresh kernel is safe. A kernel that
dies later, or that does not answer in time, is not started again: that is the notebook's doing.
"""

import functools
import tempfile
import warnings

ATTEMPTS = 3
DIED_ON_STARTUP = "Kernel died before replying to kernel_info"


def _tail(log, chars=2000):
    log.flush()
    log.seek(0)
    return log.read()[-chars:].strip() or "(nothing)"


def start_with_retries(start, attempts=ATTEMPTS):
    """Wrap ``start(*args, stderr=..., **kwargs)`` so that a kernel that dies on startup is started
    again, up to ``attempts`` times in all.

    Each attempt's kernel writes its stderr to a file of its own; a retry is reported as a warning
    with the dead kernel's stderr, and the last failure raises with it.
    """
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts!r}")

    @functools.wraps(start)
    def start_again_if_it_dies(*args, **kwargs):
        for attempt in range(1, attempts + 1):
            # The kernel's process writes to its own copy of the file's descriptor, so ours can
            # be closed once the kernel has started.
            with tempfile.TemporaryFile("w+") as log:
                try:
                    return start(*args, **{**kwargs, "stderr": log})
                except RuntimeError as err:
                    if DIED_ON_STARTUP not in str(err):
                        raise
                    if attempt == attempts:
                        raise RuntimeError(
                            f"{err} ({attempts} kernels in a row); the last one's stderr:\n"
                            f"{_tail(log)}"
                        ) from err
                    warnings.warn(
                        f"a kernel died on startup (attempt {attempt} of {attempts}); "
                        f"its stderr:\n{_tail(log)}",
                        RuntimeWarning,
                        stacklevel=2,
                    )

    return start_again_if_it_dies
