"""The nbval sanitizer masks measured numbers and spacing, and keeps every word."""

import re
from pathlib import Path

import pytest
from nbval.plugin import get_sanitize_patterns

PATTERNS = get_sanitize_patterns(
    (Path(__file__).resolve().parent / "nbval_sanitize.cfg").read_text()
)


def sanitize(text: str) -> str:
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


def test_every_rule_is_read():
    # a rule whose "replace:" line lost its format would be dropped silently by nbval
    source = (Path(__file__).resolve().parent / "nbval_sanitize.cfg").read_text()
    assert len(PATTERNS) == source.count("\nregex: ")


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("standard model: test accuracy 0.922", "standard model: test accuracy 0.923"),
        (
            "      train  shifted test\nERM  1.000   0.508",
            "      train  shifted test\nERM  0.99   -0.5",
        ),
        ("ratio 12,122x; 8.39e-05 s; nan", "ratio 9,871x; 1.2e-04 s; 0.5"),
        ("seed 1     2200.0   NaN", "seed 1001  1250.0   3.0"),
    ],
)
def test_numbers_and_column_widths_do_not_matter(a, b):
    assert sanitize(a) == sanitize(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("✓ SAND-mask learns the spirals", "✓ SAND-mask learns the circles"),
        ("method  train  shifted test", "method  train  test"),
        ("E1 held", "E2 held"),
        ("held on x0.5", "held on x3"),
    ],
)
def test_words_labels_and_names_still_count(a, b):
    assert sanitize(a) != sanitize(b)
