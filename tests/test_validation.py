"""The validation module: each check accepts what it should, refuses the rest, names the argument."""

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hvnotes import train, validation

PACKAGE = Path(__file__).resolve().parents[1] / "hvnotes"


VALIDATION_MODULES = ("validation", "validation_numbers", "validation_models")


@pytest.mark.parametrize("module", VALIDATION_MODULES)
def test_validation_sits_at_the_bottom_of_the_house(module):
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            name = node.module
            imported.add(name if name.startswith("hvnotes.") else name.split(".")[0])
    # its two parts import no module of the package; validation imports them to re-export
    lower = {f"hvnotes.{m}" for m in VALIDATION_MODULES[1:]} if module == "validation" else set()
    assert imported <= {"__future__", "contextlib", "math", "numbers", "collections", "numpy",
                        "torch", *lower}, imported  # fmt: skip


def test_validation_re_exports_every_check_of_its_parts():
    from hvnotes import validation_models, validation_numbers

    for part in (validation_numbers, validation_models):
        for name in part.__all__:
            assert name in validation.__all__ and getattr(validation, name) is getattr(part, name)


def test_train_keeps_the_old_names_of_the_checks():
    for name in ("check_tensor", "check_number", "check_stacked", "check_input_dtype",
                 "check_optimizer", "check_positive_int", "evaluating"):  # fmt: skip
        assert getattr(train, name) is getattr(validation, name)
    with pytest.raises(ValueError, match="steps"):
        train.check_positive_int("steps", 1.5)  # a ValueError, as this name always raised
    mask = torch.ones(4, 1, dtype=torch.bool)  # the old permissive broadcast, kept for its callers
    assert train.check_mask("m", mask, torch.zeros(4, 3), "hint") is mask


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(
    "value", [0.5, 1, np.float32(0.5), np.float64(0.5), np.int64(1), torch.tensor(0.5),
              torch.tensor(1), np.array(0.5)],
)  # fmt: skip
def test_numbers_come_in_many_types(value):
    out = validation.check_number("tau", value, low=0.0, high=1.0)
    assert isinstance(out, float) and out == float(np.asarray(value))


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, np.float32("nan")])
def test_non_finite_numbers_are_errors(value):
    with pytest.raises(ValueError, match="tau must be a finite number"):
        validation.check_number("tau", value)


@pytest.mark.parametrize("value", [True, np.bool_(True), "0.5", None, [0.5], torch.ones(2)])
def test_things_that_are_not_one_number_are_type_errors(value):
    with pytest.raises(TypeError, match="tau"):
        validation.check_number("tau", value)


@pytest.mark.parametrize(
    ("kwargs", "good", "bad"),
    [
        ({"low": 0.0, "high": 1.0}, [0.0, 1.0], [-1e-9, 1.0 + 1e-9]),
        ({"positive": True}, [1e-300], [0.0, -1.0]),
        ({"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}, [0.5], [0.0, 1.0]),
    ],
)
def test_number_ranges_are_exact(kwargs, good, bad):
    for value in good:
        assert validation.check_number("x", value, **kwargs) == value
    for value in bad:
        with pytest.raises(ValueError, match="x must be a finite number"):
            validation.check_number("x", value, **kwargs)


def test_integers():
    assert validation.check_integer("n", np.int64(3), low=1) == 3
    assert validation.check_integer("n", torch.tensor(3)) == 3
    for bad in (3.0, True, "3", torch.tensor(3.0), None):
        with pytest.raises(TypeError, match="n must be an int"):
            validation.check_integer("n", bad)
    with pytest.raises(ValueError, match="n must be an int >= 1 and <= 5, got 6"):
        validation.check_integer("n", 6, low=1, high=5)


def test_choices_and_callables_and_generators():
    assert validation.check_choice("method", "and", ("and", "geom")) == "and"
    with pytest.raises(ValueError, match=r"method must be one of \('and', 'geom'\)"):
        validation.check_choice("method", "or", ("and", "geom"))
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        validation.check_callable("loss_fn", 3)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        validation.check_generator("generator", 0)
    assert validation.check_generator("generator", None) is None


# ----------------------------------------------------------------------------- tensors


def test_tensor_conditions():
    x = torch.zeros(3, 4)
    assert (
        validation.check_tensor("x", x, ndim=2, shape=(None, 4), dtype="float", device="cpu") is x
    )
    cases = [
        ({"ndim": 3}, ValueError, "x must have 3 dimension"),
        ({"min_ndim": 3}, ValueError, "at least 3"),
        ({"shape": (3, 5)}, ValueError, r"shape \(3, 5\)"),
        ({"shape": (None, 5)}, ValueError, r"shape \(\*, 5\)"),
        ({"dtype": "integer"}, TypeError, "x must be an integer tensor"),
        ({"dtype": torch.float64}, TypeError, "x must have dtype torch.float64"),
        ({"device": "meta"}, ValueError, "x is on cpu but must be on meta"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            validation.check_tensor("x", x, **kwargs)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        validation.check_tensor("x", np.zeros((3, 4)))
    with pytest.raises(ValueError, match="x must hold at least one row"):
        validation.check_tensor("x", torch.zeros(0, 4))
    assert validation.check_tensor("x", torch.tensor(1.0), rows=False).ndim == 0


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_tensors_are_errors(bad):
    x = torch.zeros(3, 4)
    x[1, 2] = bad
    with pytest.raises(ValueError, match="x holds NaN or inf"):
        validation.check_tensor("x", x)
    assert validation.check_tensor("x", x, finite=False) is x


def test_labels():
    y = torch.tensor([0, 2, 1])
    assert validation.check_labels("y", y, n=3, classes=3, long=True) is y
    cases = [
        (y[:, None], ValueError, r"y must have 1 dimension.*y.squeeze\(1\)"),
        (y.float(), TypeError, "y must hold integer class indices"),
        (y.int(), TypeError, "y must be torch.int64"),
        (torch.tensor([0, 3, 1]), ValueError, r"class indices \[0, 3\).*from 0 to 3"),
        (torch.tensor([0, -1, 1]), ValueError, "from -1 to 1"),
        (y[:2], ValueError, "y must have 3 rows"),
    ]
    for value, error, message in cases:
        with pytest.raises(error, match=message):
            validation.check_labels("y", value, n=3, classes=3, long=True)


def test_masks_are_exact_or_one_per_row_never_a_silent_broadcast():
    x = torch.zeros(5, 3, 4)
    for good in (torch.ones(5, 3, 4), torch.ones(3, 4)):
        assert validation.check_mask("keep", good, x) is good
    for bad in (torch.ones(5, 1, 1), torch.ones(4), torch.ones(1, 3, 4), torch.ones(5, 3, 1)):
        with pytest.raises(ValueError, match=r"keep must have shape \(5, 3, 4\) or \(3, 4\)"):
            validation.check_mask("keep", bad, x)
    with pytest.raises(ValueError, match=r"keep must have shape \(5, 3, 4\), got shape \(3, 4\)"):
        validation.check_mask("keep", torch.ones(3, 4), x, broadcast="none")
    assert validation.check_mask("keep", torch.ones(5, 1, 1), x, broadcast="any").shape == (5, 1, 1)
    with pytest.raises(ValueError, match="does not broadcast"):
        validation.check_mask("keep", torch.ones(2, 3, 4), x, broadcast="any")
    with pytest.raises(TypeError, match="keep must be a bool Tensor"):
        validation.check_mask("keep", torch.ones(3, 4), x, dtype="bool")
    with pytest.raises(TypeError, match="keep must be a Tensor"):
        validation.check_mask("keep", np.ones((3, 4)), x)


def test_stacked():
    assert validation.check_stacked(torch.zeros(2, 3, 4), torch.zeros(2, 3)) == (2, 3)
    with pytest.raises(ValueError, match="stacked alike"):
        validation.check_stacked(torch.zeros(2, 3, 4), torch.zeros(3, 2))
    with pytest.raises(ValueError, match=r"xs must be env-stacked"):
        validation.check_stacked(torch.zeros(3), torch.zeros(3))
    with pytest.raises(TypeError, match="ys must be a Tensor"):
        validation.check_stacked(torch.zeros(2, 3), [[0, 1, 2]] * 2)


# ----------------------------------------------------------------------------- models


def test_model_contract():
    net = nn.Linear(4, 3)
    assert validation.check_model("model", net, module=True) is net
    assert validation.check_model("model", lambda x: x) is not None
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        validation.check_model("model", lambda x: x, module=True)
    with pytest.raises(TypeError, match="model must be a callable"):
        validation.check_model("model", 3)


def test_logits():
    assert validation.check_logits("model", torch.zeros(4, 3), 4).shape == (4, 3)
    with pytest.raises(ValueError, match=r"logits of shape \(N, C\).*C >= 2"):
        validation.check_logits("model", torch.zeros(4))
    with pytest.raises(ValueError, match="returned 3 rows"):
        validation.check_logits("model", torch.zeros(3, 2), 4)
    with pytest.raises(ValueError, match="NaN or inf logits"):
        validation.check_logits("model", torch.full((4, 3), math.nan))
    with pytest.raises(TypeError, match="floating-point logits"):
        validation.check_logits("model", torch.zeros(4, 3, dtype=torch.long))


def test_per_example_refuses_batchnorm_in_training_mode_only():
    net = nn.Sequential(nn.Linear(4, 5), nn.BatchNorm1d(5), nn.Linear(5, 2))
    with pytest.raises(ValueError, match=r"BatchNorm layer in training mode \(1\)"):
        validation.check_per_example("model", net)
    validation.check_per_example("model", net.eval())
    validation.check_per_example("model", lambda x: x)


def test_finite_parameters_and_input_dtype():
    net = nn.Linear(4, 3)
    validation.check_finite_parameters("model", net)
    with torch.no_grad():
        net.bias[1] = math.inf
    with pytest.raises(ValueError, match="model's parameter bias holds NaN or inf"):
        validation.check_finite_parameters("model", net)
    with pytest.raises(TypeError, match=r"x has dtype torch.float64.*float32"):
        validation.check_input_dtype(net, torch.zeros(2, 4, dtype=torch.float64))
    validation.check_input_dtype(lambda x: x, torch.zeros(2, 4, dtype=torch.float64))


def test_optimizer_must_update_the_model():
    net, other = nn.Linear(4, 3), nn.Linear(4, 3)
    validation.check_optimizer(torch.optim.SGD(net.parameters(), lr=0.1), net)
    with pytest.raises(ValueError, match="does not update any"):
        validation.check_optimizer(torch.optim.SGD(other.parameters(), lr=0.1), net)
    with pytest.raises(TypeError, match="optimizer must be a torch.optim.Optimizer"):
        validation.check_optimizer("adam", net)


def mixed_modes():
    net = nn.Sequential(nn.Linear(4, 5), nn.Dropout(0.5), nn.Linear(5, 2))
    net.train()
    net[1].eval()  # a frozen submodule inside a training model
    return net


def modes(net):
    return [m.training for m in net.modules()]


def test_preserved_mode_restores_every_submodule_also_when_the_block_raises():
    net = mixed_modes()
    before = modes(net)
    with pytest.raises(RuntimeError, match="boom"), validation.preserved_mode(net):
        net.eval()
        raise RuntimeError("boom")
    assert modes(net) == before
    with validation.preserved_mode(net):
        net.train()
    assert modes(net) == before


def test_evaluating_is_eval_inside_and_restores_after_an_error():
    net = mixed_modes()
    before = modes(net)
    with pytest.raises(ValueError, match="inside"), validation.evaluating(net) as inside:
        assert inside is net and not any(modes(net))
        raise ValueError("inside")
    assert modes(net) == before

    def plain(x):
        return x

    with validation.evaluating(plain) as same:
        assert same is plain


def test_the_sufficiency_checker_loads_no_training_code():
    import subprocess
    import sys

    code = "import sys, hvnotes.sufficiency; print('hvnotes.train' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
