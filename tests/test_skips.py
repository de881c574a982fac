"""Every skip goes through tests/support/skips.skip_or_fail, which fails in CI (any truthy CI)."""

import os
import re

import pytest

from tests.support import skips

TESTS = os.path.dirname(os.path.abspath(__file__))


@pytest.mark.parametrize("value, ci", [("true", True), ("1", True), ("yes", True), ("True", True),
                                       ("github-actions", True), ("", False), ("0", False), ("false", False),
                                       ("no", False), ("off", False)])
def test_any_truthy_ci_value_counts(monkeypatch, value, ci):
    monkeypatch.setenv("CI", value)
    assert skips.in_ci() is ci
    with pytest.raises(pytest.fail.Exception if ci else pytest.skip.Exception, match="no editor"):
        skips.skip_or_fail("no editor")


def test_no_test_skips_around_the_rule():
    pattern = re.compile(r"pytest\.skip\(|mark\.skip|skipif|importorskip|pytest\.xfail|mark\.xfail")
    offenders = []
    for folder, _, names in os.walk(TESTS):
        for name in names:
            path = os.path.join(folder, name)
            if name.endswith(".py") and path not in (os.path.abspath(skips.__file__), os.path.abspath(__file__)):
                with open(path, encoding="utf-8") as f:
                    offenders += ["%s:%d" % (os.path.relpath(path, TESTS), number)
                                  for number, line in enumerate(f, 1) if pattern.search(line)]
    assert offenders == [], "skip through tests.support.skips.skip_or_fail instead: %s" % offenders
