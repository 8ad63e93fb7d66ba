"""The one runner every checker uses: run the cases, print one fixed line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

Case = tuple[str, Callable[[], None]]


def run_checks(name: str, cases: Sequence[Case]) -> bool:
    """Run every case (a thunk that raises ``AssertionError`` on failure) and print one summary.

    Returns True when every case passed. Exceptions other than ``AssertionError`` count as
    failures too and are reported with their type, so a crash in the learner's code is readable.
    """
    failures = []
    for description, case in cases:
        try:
            case()
        except NotImplementedError:
            failures.append(f"{description}: not implemented yet")
        except AssertionError as err:
            failures.append(f"{description}: {err}" if str(err) else description)
        except Exception as err:  # the learner's code crashed: say how
            failures.append(f"{description}: raised {type(err).__name__}: {err}")
    passed = len(cases) - len(failures)
    if failures:
        print(f"✗ {name}: {passed}/{len(cases)} checks passed")
        for line in failures:
            print(f"  - {line}")
        return False
    print(f"✓ {name}: {passed}/{len(cases)} checks passed")
    return True
