"""The capstone's scoring: registered predictions, paired seed intervals, rules that can fail,
and a score that weighs risk against a null rival."""

import copy
import hashlib
import math
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from hvnotes import explanations as ex

NAN = float("nan")
RULES = {"loss_at": 1.0, "level": 0.95, "k": 2, "tolerance": 0.05, "broken_below": 0.5,
         "memorised_below": 0.1, "destroyed_below": 0.5, "collapsed_at": 0.3, "control_seed": 5,
         "e1_detail": "primes_x10"}  # fmt: skip

# ----------------------------------------------------------------------------- the paired interval


def test_paired_interval_is_the_t_interval_of_the_log_ratios():
    base, new = [500.0, 600.0, 700.0], [800.0, 1000.0, 1000.0]
    d = np.log(np.array(new) / np.array(base))
    half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / math.sqrt(3)
    low, high = ex.paired_interval(base, new, 1500)
    assert low == pytest.approx(d.mean() - half) and high == pytest.approx(d.mean() + half)


def test_paired_interval_covers_no_effect_at_the_stated_rate():
    # independent check by simulation: seed effects shared by the pair, no effect of the setting
    rng = np.random.default_rng(0)
    trials, covered = 3000, 0
    for _ in range(trials):
        seed_effect = rng.normal(6.5, 0.3, size=3)
        base = np.exp(seed_effect + rng.normal(0, 0.1, size=3))
        new = np.exp(seed_effect + rng.normal(0, 0.1, size=3))
        low, high = ex.paired_interval(base, new, 1e9)
        covered += low <= 0 <= high
    assert abs(covered / trials - 0.95) < 0.015


def test_paired_interval_counts_a_run_that_never_groks_as_the_budget():
    assert ex.paired_interval([500.0, 600.0], [NAN, 1200.0], 1500) == pytest.approx(
        ex.paired_interval([500.0, 600.0], [1500.0, 1200.0], 1500)
    )
    # separate budgets for the baseline and the setting
    assert ex.paired_interval([NAN, 600.0], [NAN, 1200.0], (1500, 6000)) == pytest.approx(
        ex.paired_interval([1500.0, 600.0], [6000.0, 1200.0], 1)
    )
    assert ex.paired_interval([500.0], [900.0], 1500) == (-math.inf, math.inf)


@pytest.mark.parametrize(
    ("base", "new", "budget", "level", "match"),
    [([1.0, 2.0], [1.0], 10, 0.95, "equal-length"), ([1.0, -2.0], [1.0, 2.0], 10, 0.95, "positive"),
     ([1.0, 2.0], [1.0, 2.0], 0, 0.95, "positive"), ([1.0, 2.0], [1.0, 2.0], 10, 1.5, "level")],
)  # fmt: skip
def test_paired_interval_rejects_bad_input(base, new, budget, level, match):
    with pytest.raises(ValueError, match=match):
        ex.paired_interval(base, new, budget, level)


# ----------------------------------------------------------------------------- judging


def timing(grokked=3, low=0.2, high=0.6, n=3, base_grokked=True):
    return {"n": n, "grokked": grokked, "low": low, "high": high, "base_grokked": base_grokked}


@pytest.mark.parametrize(
    ("code", "t", "verdict"),
    [
        ("later", timing(), "held"),
        ("later", timing(low=-0.6, high=-0.2), "failed"),
        ("later", timing(low=-0.2, high=0.2), "unclear"),
        ("later", timing(grokked=0, low=0.0, high=0.0), "held"),  # nothing groks: later
        ("earlier", timing(low=-0.6, high=-0.2), "held"),
        ("earlier", timing(), "failed"),
        ("earlier", timing(grokked=0, low=-1, high=-0.5), "failed"),
        ("earlier", timing(low=-0.2, high=0.2), "unclear"),
        ("same", timing(low=-0.2, high=0.2), "held"),
        ("same", timing(), "failed"),
        ("same", timing(grokked=0, low=-0.2, high=0.2), "failed"),
        ("never", timing(grokked=0), "held"),
        ("never", timing(grokked=1), "failed"),
        ("groks", timing(), "held"),
        ("groks", timing(grokked=1), "unclear"),
        ("groks", timing(grokked=0), "failed"),
        ("later", timing(base_grokked=False), "unclear"),  # no baseline to be later than
        ("never", timing(grokked=0, base_grokked=False), "held"),
    ],
)
def test_judge_timing(code, t, verdict):
    assert ex.judge_timing(code, t) == verdict


def run(**kw):
    base = {"grokked": True, "primes": "rises", "test_acc": 1.0, "fourier_group": "few carry it",
            "fourier_tokens": "few carry it", "collapse_state": "no collapse"}  # fmt: skip
    return pd.Series(base | kw)


def test_e1_rule_is_a_biconditional():
    assert ex.judge_run("rises iff it groks", run(), RULES)
    assert not ex.judge_run("rises iff it groks", run(primes="falls"), RULES)
    assert not ex.judge_run("rises iff it groks", run(grokked=False), RULES)
    assert ex.judge_run("rises iff it groks", run(grokked=False, primes="falls"), RULES)
    assert ex.judge_run("rises", run(grokked=False), RULES)


def test_e3_reads_the_group_circle_and_the_null_the_token_circle():
    mult = run(fourier_tokens="other")  # few frequencies along the discrete log, not the tokens
    assert ex.judge_run("few frequencies iff it generalises", mult, RULES)
    assert not ex.judge_run("few carry it", mult, RULES)
    memoriser = run(test_acc=0.01, fourier_group="fit destroyed", fourier_tokens="fit destroyed")
    assert ex.judge_run("few frequencies iff it generalises", memoriser, RULES)
    assert not ex.judge_run("few frequencies iff it generalises", run(test_acc=0.01), RULES)


def test_fourier_category_needs_the_control_to_break_what_the_projection_keeps():
    def outcome(**kw):
        return {"test_acc": 1.0, "train_top_group": 1.0, "test_top_group": 0.99,
                "test_random_group": 0.05} | kw  # fmt: skip

    assert ex._fourier_category(outcome(), "group", RULES) == "few carry it"
    # any frequencies of the same energy would do: *these* few are not special
    assert ex._fourier_category(outcome(test_random_group=0.9), "group", RULES) == "other"
    assert ex._fourier_category(outcome(test_top_group=0.8), "group", RULES) == "other"
    # a half-way run gets the same control
    half = outcome(test_acc=0.5, test_top_group=0.6, test_random_group=0.3)
    assert ex._fourier_category(half, "group", RULES) == "other"
    memoriser = outcome(test_acc=0.01, train_top_group=0.2)
    assert ex._fourier_category(memoriser, "group", RULES) == "fit destroyed"
    assert ex._fourier_category(memoriser | {"train_top_group": 0.9}, "group", RULES) == "other"


def test_collapse_codes_and_unknown_codes():
    assert ex.judge_run("collapse", run(collapse_state="collapse"), RULES)
    assert not ex.judge_run("no collapse", run(collapse_state="some"), RULES)
    with pytest.raises(ValueError, match="code"):
        ex.judge_run("sooner", run(), RULES)
    with pytest.raises(ValueError, match="code"):
        ex.judge_timing("rises", timing())


# ----------------------------------------------------------------------------- verdicts and score


def tiny_registration(predictions):
    data = {"scheme": {}, "rules": RULES, "predictions": predictions,
            "settings": {"baseline": {}, "a": {"part": "lesson"}, "b": {"part": "lesson"}}}  # fmt: skip
    return ex.parse_registration(data)


def runs_table(a_times, b_times, b_primes="rises"):
    rows = []
    for setting, times in [("baseline", [500.0, 600.0, 700.0]), ("a", a_times), ("b", b_times)]:
        for i, t in enumerate(times):
            rows.append(run(grokked=t == t, primes=b_primes if setting == "b" else "rises").to_dict()
                        | {"setting": setting, "seed_index": i, "grok_time": t, "steps": 1500})  # fmt: skip
    return pd.DataFrame(rows)


def test_a_prediction_the_null_rival_shares_earns_nothing_a_failed_one_costs():
    reg = tiny_registration({
        "a": {"E2": ["later"], "E1": ["rises iff it groks"], "null": ["same", "rises"]},
        "b": {"E2": ["later"], "E1": ["rises iff it groks"], "null": ["never", "rises"]},
    })  # fmt: skip
    # a: clearly later than the baseline on every seed; b: never groks, its count rises
    runs = runs_table([1000.0, 1300.0, 1400.0], [NAN, NAN, NAN])
    v = ex.verdicts(reg, runs)
    assert list(v.columns) == ["E2", "E1", "null"]
    assert v.loc[("a", "timing"), "E2"] == "held" and v.loc[("a", "timing"), "null"] == "failed"
    assert v.loc[("b", "timing"), "E2"] == "held" and v.loc[("b", "timing"), "null"] == "held"
    assert v.loc[("b", "primes"), "E1"] == "failed" and v.loc[("a", "primes"), "E1"] == "held"
    scores = ex.score(v)
    assert scores.loc["E2", "risky"] == 1 and scores.loc["E2", "score"] == 1  # b: no risk
    assert scores.loc["E1", "score"] == -1  # held only where the null held, failed once
    assert scores.loc["null", "score"] == -1 and scores.loc["null", "risky"] == 0
    # the null rival's own predictions in E2's place earn nothing
    null_as_e2 = tiny_registration({s: {"E2": p["null"][:1], "null": p["null"]}
                                     for s, p in reg.data["predictions"].items()})  # fmt: skip
    assert ex.score(ex.verdicts(null_as_e2, runs)).loc["E2", "risky"] == 0


def test_extra_rivals_are_judged_by_the_same_rules():
    reg = tiny_registration({"a": {"E2": ["later"], "null": ["same"]}})
    runs = runs_table([300.0, 350.0, 400.0], [500.0, 600.0, 700.0])
    v = ex.verdicts(reg, runs, extra={"you": {"a": ["earlier"]}})
    assert v.loc[("a", "timing"), "you"] == "held" and v.loc[("a", "timing"), "E2"] == "failed"
    assert ex.score(v).loc["you", "score"] == 1


# ----------------------------------------------------------------------------- the registration


def test_the_registered_file_parses_and_every_rival_faces_the_null():
    reg = ex.load_registration()
    assert reg.settings("lesson") and reg.settings("deep dive")
    for setting, rivals in reg.data["predictions"].items():
        null = {ex.OBSERVABLE[c] for c in rivals["null"]}
        assert {"E1", "E2", "E3", "E4"} <= set(rivals), setting
        for codes in rivals.values():
            assert {ex.OBSERVABLE[c] for c in codes} <= null
    table = reg.table("lesson")
    assert list(table.columns)[-1] == "null" and list(table.index) == reg.settings("lesson")


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["predictions"]["more data"]["E2"].append("later"), "repeated"),
        (lambda d: d["predictions"]["more data"].update(E5=["sooner"]), "unknown"),
        (lambda d: d["predictions"]["more data"].update(null=["same"]), "null rival"),
        (lambda d: d["predictions"].update(nowhere={"E2": ["later"]}), "not a registered"),
        (lambda d: d["settings"]["more data"].update(lr=1.0), "unknown keys"),
    ],
)
def test_parse_registration_rejects_bad_content(edit, match):
    data = copy.deepcopy(ex.load_registration().data)
    edit(data)
    with pytest.raises(ValueError, match=match):
        ex.parse_registration(data)


def test_digest_changes_with_a_prediction_a_threshold_or_a_pinned_rule(monkeypatch):
    reg = ex.load_registration()
    digest = reg.digest()
    assert len(digest) == 64 and ex.load_registration().digest() == digest
    data = copy.deepcopy(reg.data)
    data["predictions"]["more data"]["E2"] = ["later"]
    assert ex.Registration(data).digest() != digest
    data = copy.deepcopy(reg.data)
    data["rules"]["tolerance"] = 0.1
    assert ex.Registration(data).digest() != digest
    monkeypatch.setattr(ex, "judge_timing", lambda code, timing: "held")
    assert reg.digest() != digest


def test_run_registered_pairs_every_setting_with_the_baseline_seed_by_seed():
    data = {
        "scheme": {"p": 11, "operation": "add", "weight_decay": 1.0, "train_frac": 0.5,
                   "init_scale": 1.0, "loss": "softmax", "steps": 20, "lr": 0.01, "embed_dim": 4,
                   "hidden": 8, "seeds": [3, 4]},
        "rules": RULES,
        "settings": {"baseline": {}, "x": {"part": "lesson", "weight_decay": 0.0},
                     "y": {"part": "lesson", "loss": "stablemax", "seeds": [3]},
                     "z": {"part": "deep dive", "operation": "multiply"}},
        "predictions": {"x": {"E2": ["never"], "null": ["never"]}},
    }  # fmt: skip
    reg = ex.parse_registration(data)
    history, runs, models = ex.run_registered(reg, "lesson")
    assert list(runs["setting"]) == ["baseline", "baseline", "x", "x", "y"]
    assert list(runs["seed_index"]) == [0, 1, 0, 1, 0] and len(models) == 2
    assert runs.groupby("seed_index")["train_acc"].size().tolist() == [3, 2]
    seeds = history.groupby("label")["seed"].first()
    assert seeds["baseline #0"] == seeds["x #0"] == seeds["y #0"] == 3
    for column in ["grok_time", "primes", "fourier_group", "fourier_tokens", "collapse_state"]:
        assert column in runs
    assert set(runs["fourier_group"]) <= {"few carry it", "fit destroyed", "other"}
    assert (runs.loc[runs["setting"] == "y", "collapse"] == 0).all()  # StableMax cannot collapse
    v = ex.verdicts(reg, runs)
    assert v.loc[("x", "timing"), "E2"] in ex.VERDICTS


# The registration as committed in 531df05, before any registered setting was run: the file of
# predictions, settings and thresholds (its bytes), and the digest of that file together with the
# source of every pinned function. A change to a prediction, a threshold or a pinned rule changes
# the digest: this test then fails, and the notebooks' own check of the digest fails with it.
REGISTERED_FILE_SHA256 = "aec1e855b76b3964c20b8dc03c89edf92359707f882915bd5bfe21197d49d843"
REGISTERED_DIGEST = "8a04a4c3411338a429ebaf5016992942b38b377098bad4e14d6439c7b457fc85"
# Amendment 1, after the runs: the pinned code checks its input (run_grokking's learning rate,
# StableMax's labels) and trains through the package's one loop (grokking.GrokkingRuns, driven
# by train.run; both pinned from then on). No prediction, setting or threshold changed (the file
# is byte for byte the registered one), and no number a run produces: test_trainers.py trains
# the amended loop beside the registered one.
AMENDED_DIGEST = "aef4f92b0ebac6b8f41e783c90e519d8044d5173d4526e448c61fee22d1cbe1b"


def test_the_predictions_are_the_file_committed_before_the_runs():
    raw = resources.files("hvnotes").joinpath("registered", "grokking.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == REGISTERED_FILE_SHA256


def test_the_code_that_runs_and_judges_them_is_the_registered_code_as_amended():
    assert ex.load_registration().digest() == AMENDED_DIGEST
