"""shared/progress.py: the words and the bar fraction Krita, GIMP and the command line all show."""

from shared.progress import details, eta_text, fraction, progress_text


def test_fraction_spans_all_tasks_and_prefers_work_done():
    assert fraction({"iteration": 50, "iterations": 100}) == 0.5
    assert fraction({"iteration": 50, "iterations": 100}, 1, 2) == 0.75
    assert fraction({}, 1, 4) == 0.25
    assert fraction({"iteration": 500, "iterations": 100}) == 1.0
    assert fraction({"iteration": 10, "iterations": 100, "fraction": 0.4}) == 0.4     # work, not iterations
    assert fraction({"iteration": True, "iterations": 2}) == 0.0                       # not a number


def test_eta_text():
    assert eta_text(None) == "" and eta_text(float("nan")) == "" and eta_text(-1) == ""
    assert eta_text(4.6) == "about 5 s left"
    assert eta_text(125) == "about 2 min 05 s left"
    assert eta_text(3700) == "about 1 h 01 min left"


def test_progress_text():
    header = {"scale": 1, "scales": 3, "iteration": 40, "iterations": 200, "eta_s": 75.4}
    assert details(header) == "scale 2/3, iteration 40/200, about 1 min 15 s left"
    assert progress_text(header, "Photo", 0, 2) == "Photo (1/2) \u2013 scale 2/3, iteration 40/200, about 1 min 15 s left"
    assert progress_text({"scale": 0, "scales": 1, "iteration": 3, "iterations": 4}) == "iteration 3/4"
    assert progress_text({"stage": "loading"}, "L") == "L \u2013 loading"
    assert progress_text({}, "Sky", 1, 3) == "Sky (2/3)"
