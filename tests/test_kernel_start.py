"""A kernel that dies on startup is started again; every other failure passes through."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from kernel_start import DIED_ON_STARTUP, start_with_retries  # noqa: E402  (a repository tool)


class Starts:
    """A stand-in for a kernel start: fails with the given errors in turn, then returns 'kernel'."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.stderrs = []

    def __call__(self, name, stderr):
        self.stderrs.append(stderr)
        stderr.write(f"attempt {len(self.stderrs)} of {name}\n")
        if self.errors:
            raise self.errors.pop(0)
        return "kernel"


def test_a_kernel_that_starts_is_returned_at_once():
    start = Starts()
    assert start_with_retries(start)("python3") == "kernel"
    assert len(start.stderrs) == 1


def test_a_kernel_that_dies_on_startup_is_started_again_with_a_warning():
    start = Starts(RuntimeError(DIED_ON_STARTUP), RuntimeError(DIED_ON_STARTUP))
    with pytest.warns(RuntimeWarning) as record:
        assert start_with_retries(start)("python3") == "kernel"
    assert [str(w.message) for w in record] == [
        f"a kernel died on startup (attempt {k} of 3); its stderr:\nattempt {k} of python3"
        for k in (1, 2)
    ]
    assert len(start.stderrs) == 3
    assert len({id(log) for log in start.stderrs}) == 3  # each attempt writes its own log


def test_the_last_death_raises_with_the_kernels_stderr():
    start = Starts(*[RuntimeError(DIED_ON_STARTUP)] * 2)
    with (
        pytest.warns(RuntimeWarning),
        pytest.raises(RuntimeError, match=r"2 kernels in a row.*\nattempt 2 of python3"),
    ):
        start_with_retries(start, attempts=2)("python3")


@pytest.mark.parametrize(
    "error",
    [RuntimeError("Kernel didn't respond in 60 seconds"), ValueError(DIED_ON_STARTUP)],
    ids=["timeout", "not-a-runtime-error"],
)
def test_other_failures_are_not_retried(error):
    start = Starts(error)
    with pytest.raises(type(error)):
        start_with_retries(start)("python3")
    assert len(start.stderrs) == 1


def test_attempts_must_be_positive():
    with pytest.raises(ValueError, match="attempts must be at least 1, got 0"):
        start_with_retries(Starts(), attempts=0)
