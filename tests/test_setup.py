"""hvnotes.setup: seeding, threads, device choice and its errors."""

import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

import hvnotes


def draw() -> tuple:
    return random.random(), np.random.rand(3).tolist(), torch.rand(3).tolist()


def test_same_seed_reproduces_every_generator():
    hvnotes.setup(7)
    first = draw()
    hvnotes.setup(7)
    assert draw() == first


def test_different_seeds_differ():
    hvnotes.setup(1)
    first = draw()
    hvnotes.setup(2)
    assert draw() != first


def test_threads_default_to_one(monkeypatch):
    monkeypatch.delenv("HVNOTES_THREADS", raising=False)
    hvnotes.setup(0)
    assert torch.get_num_threads() == 1


def test_threads_from_environment(monkeypatch):
    monkeypatch.setenv("HVNOTES_THREADS", "2")
    hvnotes.setup(0)
    assert torch.get_num_threads() == 2
    monkeypatch.setenv("HVNOTES_THREADS", "1")
    hvnotes.setup(0)


def test_cpu_can_be_forced(monkeypatch):
    monkeypatch.setenv("HVNOTES_DEVICE", "cpu")
    assert hvnotes.setup(0) == torch.device("cpu")


def test_auto_device_matches_cuda_availability(monkeypatch):
    monkeypatch.delenv("HVNOTES_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert hvnotes.setup(0).type == expected


@pytest.mark.parametrize("seed", ["0", 1.5, None, True])
def test_seed_must_be_an_int(seed):
    with pytest.raises(TypeError, match="seed"):
        hvnotes.setup(seed)


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_must_be_in_range(seed):
    with pytest.raises(ValueError, match="seed"):
        hvnotes.setup(seed)


@pytest.mark.parametrize(
    ("name", "value"),
    [("HVNOTES_DEVICE", "tpu"), ("HVNOTES_THREADS", "0"), ("HVNOTES_THREADS", "many")],
)
def test_bad_environment_variables_are_named(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=name):
        hvnotes.setup(0)


@pytest.mark.parametrize(("value", "expected"), [("1", "True"), ("0", "False"), (None, "False")])
def test_fast_flag_reads_the_environment(value, expected):
    env = {k: v for k, v in os.environ.items() if k != "HVNOTES_FAST"}
    if value is not None:
        env["HVNOTES_FAST"] = value
    out = subprocess.run(
        [sys.executable, "-c", "import hvnotes; print(hvnotes.FAST)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == expected
