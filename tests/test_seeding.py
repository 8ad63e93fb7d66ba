"""The base seed: HVNOTES_SEED replaces it, every derived seed follows it, nothing escapes it."""

import ast
import json
import random
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import hvnotes
from hvnotes import datasets, seeding, train

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_environment_variable_replaces_the_argument(monkeypatch):
    monkeypatch.setenv("HVNOTES_SEED", "3")
    hvnotes.setup(0)
    assert hvnotes.base_seed() == 3
    assert hvnotes.derive_seed(0) == 3000 and hvnotes.derive_seed(7) == 3007
    a = random.random(), np.random.rand(), torch.rand(1).item()
    monkeypatch.delenv("HVNOTES_SEED")
    hvnotes.setup(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a


def test_base_zero_gives_the_offsets_themselves():
    hvnotes.setup(0)
    assert [hvnotes.derive_seed(k) for k in range(3)] == [0, 1, 2]


@pytest.mark.parametrize("value", ["x", "-1", "1.5"])
def test_bad_environment_seed_is_named(monkeypatch, value):
    monkeypatch.setenv("HVNOTES_SEED", value)
    with pytest.raises((ValueError, TypeError), match="HVNOTES_SEED"):
        hvnotes.setup(0)


def test_empty_environment_seed_means_unset(monkeypatch):
    monkeypatch.setenv("HVNOTES_SEED", "")
    hvnotes.setup(5)
    assert hvnotes.base_seed() == 5


@pytest.mark.parametrize("offset", [-1, 1000])
def test_offset_out_of_range_is_named(offset):
    with pytest.raises(ValueError, match="offset"):
        hvnotes.derive_seed(offset)


def test_package_defaults_follow_the_base_seed():
    # a default (seed=None) draw equals the explicit derived seed, and moves with the base seed
    hvnotes.setup(0)
    default0 = datasets.load_digits().y_train
    assert torch.equal(default0, datasets.load_digits(seed=0).y_train)
    hvnotes.setup(2)
    default2 = datasets.load_digits().y_train
    assert torch.equal(default2, datasets.load_digits(seed=2000).y_train)
    assert not torch.equal(default0, default2)


def test_fit_batch_order_follows_the_base_seed():
    x, y = torch.randn(64, 3), torch.randint(0, 2, (64,))

    def trained(base):
        hvnotes.setup(base)
        with seeding.torch_seed(123):  # the same initialisation for both
            model = torch.nn.Linear(3, 2)
        train.fit(model, x, y, epochs=2, batch_size=8, progress=False)
        return model.weight.detach().clone()

    assert torch.equal(trained(0), trained(0))
    assert not torch.equal(trained(0), trained(1))


def test_torch_seed_restores_the_callers_stream():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    with seeding.torch_seed(5):
        inside = torch.rand(3)
    assert torch.equal(torch.rand(3), expected), "the caller's stream continues untouched"
    with seeding.torch_seed(5):
        assert torch.equal(torch.rand(3), inside), "the block is reproducible"


_LITERAL_SEED = re.compile(
    r"(manual_seed|default_rng|random_state)\(\s*\d|\bseeds?\s*=\s*[(\[]?\s*\d"
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_hard_code_no_seed(path):
    # every random draw must derive from the base seed: no literal seeds in the code cells
    nb = json.loads(path.read_text())
    offending = []
    for index, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code":
            continue
        ast.parse(source)
        offending += [f"cell {index}: {m.group(0)}" for m in _LITERAL_SEED.finditer(source)]
    assert not offending, offending


def test_seed_types_and_ranges_are_named(monkeypatch):
    assert seeding.resolve_seed(torch.tensor(3)) == 3 and seeding.resolve_seed(np.int64(3)) == 3
    with pytest.raises(ValueError, match="device"):
        seeding.generator(0, device="nope")
    monkeypatch.setenv("HVNOTES_SEED", "5000000")  # 1000 * base would leave the seed range
    with pytest.raises(ValueError, match="HVNOTES_SEED must be < 4294967"):
        hvnotes.setup(0)
