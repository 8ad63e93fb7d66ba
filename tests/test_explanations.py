"""The capstone's scoring: calibrated bands, registered predictions, rules that can fail."""

import math

import numpy as np
import pandas as pd
import pytest

from hvnotes import explanations as ex

BAND, BUDGET = (1000.0, 2000.0), 3000
NAN = float("nan")


@pytest.mark.parametrize(
    ("prediction", "time", "verdict"),
    [
        ("later", NAN, "held"),
        ("later", 2500, "held"),
        ("later", 1500, "unclear"),
        ("later", 500, "failed"),
        ("earlier", 500, "held"),
        ("earlier", 1500, "unclear"),
        ("earlier", 2500, "failed"),
        ("earlier", NAN, "failed"),
        ("never", NAN, "held"),
        ("never", 800, "failed"),
        ("groks", 800, "held"),
        ("groks", NAN, "failed"),  # a seed run that does not grok fails E2's prediction
        ("band", 1500, "held"),
        ("band", 2500, "failed"),
        ("band", NAN, "failed"),
    ],
)
def test_judge_timing(prediction, time, verdict):
    assert ex.judge_timing(prediction, time, BAND, BUDGET) == verdict


def test_a_budget_inside_the_band_cannot_decide_later():
    assert ex.judge_timing("later", NAN, BAND, budget=1800) == "unclear"
    assert ex.judge_timing("earlier", NAN, BAND, budget=1800) == "unclear"


def outcome(**kw):
    base = {"grok_time": 1200.0, "prime_change": -5, "test_acc": 1.0, "train_top": 1.0,
            "test_top": 0.99, "test_control": 0.1, "collapse": 0.0}  # fmt: skip
    return pd.Series(base | kw)


def test_a_non_grokking_seed_run_is_scored_as_a_failed_e2_prediction():
    table = pd.DataFrame({"E2": ["band", "groks"]}, index=["seed A", "seed B"])
    reg = ex.register(table, band=BAND, budget=BUDGET, tolerance=0.05, memorised_below=0.1)
    outcomes = pd.DataFrame([outcome(grok_time=NAN), outcome(grok_time=NAN)], index=table.index)
    verdicts = ex.score(reg, outcomes)
    assert verdicts["E2"].tolist() == ["failed", "failed"]
    assert ex.tally(verdicts).loc["failed", "E2"] == 2


def test_e1_rule_is_a_biconditional():
    rules = {"band": BAND, "budget": BUDGET}
    assert ex.judge("rises iff it groks", outcome(prime_change=3), rules) == "held"
    assert ex.judge("rises iff it groks", outcome(prime_change=-3), rules) == "failed"
    assert ex.judge("rises iff it groks", outcome(prime_change=3, grok_time=NAN), rules) == "failed"
    assert ex.judge("rises iff it groks", outcome(prime_change=0, grok_time=NAN), rules) == "held"


def test_e3_rule_needs_the_control_to_break_a_grokked_run():
    rules = {"tolerance": 0.05, "memorised_below": 0.1}
    assert ex.judge("few frequencies", outcome(), rules) == "held"
    # any frequencies of the same energy would do: the claim about *these* few fails
    assert ex.judge("few frequencies", outcome(test_control=0.9), rules) == "failed"
    assert ex.judge("few frequencies", outcome(test_top=0.9), rules) == "failed"
    # a memoriser: the projection must destroy the training fit
    memoriser = {"test_acc": 0.01, "test_top": 0.01, "grok_time": NAN}
    assert ex.judge("few frequencies", outcome(**memoriser, train_top=0.2), rules) == "held"
    assert ex.judge("few frequencies", outcome(**memoriser, train_top=0.9), rules) == "failed"
    # the token-order variant reads its own columns
    tokens = outcome(test_top_tokens=0.2, train_top_tokens=0.3, test_control_tokens=0.1)
    assert ex.judge("few token frequencies", tokens, rules) == "failed"


def test_collapse_rules():
    assert ex.judge_collapse("collapse", 0.6) == "held"
    assert ex.judge_collapse("collapse", 0.2) == "failed"
    assert ex.judge_collapse("no collapse", 0.0) == "held"
    assert ex.judge_collapse("no collapse", 0.2) == "unclear"
    assert ex.judge_collapse("no collapse", 0.7) == "failed"


def test_prediction_band_covers_a_new_draw_at_the_stated_rate():
    # independent check by simulation: log-normal grok times, 5 calibration seeds
    rng = np.random.default_rng(0)
    trials, covered = 4000, 0
    for _ in range(trials):
        logs = rng.normal(7.0, 0.2, size=6)
        low, high = ex.prediction_band(np.exp(logs[:5]))
        covered += low <= math.exp(logs[5]) <= high
    assert abs(covered / trials - 0.95) < 0.015
    low, high = ex.prediction_band([1000.0] * 2 + [1100.0])
    assert low < 1000.0 < 1100.0 < high


@pytest.mark.parametrize("times", [[1000, 1100], [1000, NAN, 1200], [1000, -1, 1200]])
def test_prediction_band_rejects_what_cannot_calibrate(times):
    with pytest.raises(ValueError, match="times"):
        ex.prediction_band(times)


def test_registration_digest_changes_with_any_prediction_or_rule():
    table = pd.DataFrame({"E2": ["later", "never"], "E4": ["", "collapse"]}, index=["a", "b"])
    reg = ex.register(table, band=BAND, budget=BUDGET, tolerance=0.05, memorised_below=0.1, k=6)
    same = ex.register(
        table.copy(), band=BAND, budget=BUDGET, tolerance=0.05, memorised_below=0.1, k=6
    )
    assert reg.digest() == same.digest() and len(reg.digest()) == 64
    edited = table.copy()
    edited.loc["a", "E2"] = "earlier"
    assert ex.register(edited, **reg.rules).digest() != reg.digest()
    assert ex.register(table, **(reg.rules | {"k": 4})).digest() != reg.digest()
    table.loc["a", "E2"] = "earlier"  # the registration keeps its own copy
    assert reg.digest() == same.digest()


def test_register_and_score_reject_bad_input():
    table = pd.DataFrame({"E2": ["sooner"]}, index=["a"])
    with pytest.raises(ValueError, match="codes"):
        ex.register(table, band=BAND, budget=BUDGET, tolerance=0.05, memorised_below=0.1)
    with pytest.raises(ValueError, match="rules"):
        ex.register(table.replace("sooner", "later"), band=BAND)
    reg = ex.register(table.replace("sooner", "later"), band=BAND, budget=BUDGET, tolerance=0.05,
                      memorised_below=0.1)  # fmt: skip
    with pytest.raises(ValueError, match="outcomes"):
        ex.score(reg, pd.DataFrame([outcome()], index=["b"]))
