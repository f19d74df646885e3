"""The suite does not depend on wall-clock speed: no hypothesis deadlines anywhere."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import settings

TESTS = Path(__file__).parent
# ``deadline=`` as a keyword argument with anything but None (assignments have spaces).
TIMED = re.compile(r"\bdeadline=(?!None\b)")


def test_hypothesis_gives_examples_no_deadline_by_default() -> None:
    assert settings.default.deadline is None


def test_no_test_sets_a_hypothesis_deadline() -> None:
    timed = [
        f"{path.relative_to(TESTS)}:{number}"
        for path in sorted(TESTS.rglob("*.py")) if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if TIMED.search(line)
    ]
    assert timed == [], "tests must not depend on the machine's speed"
