"""The `krita` fixture: ONE Krita start per pytest session, running the cases of every collected
test module that registered some with @krita_cases (test_krita_plugin.py, test_krita_fidelity.py).

A builder gets a context (a temp root, the style image, the fake weights, the engine's endpoint and
the command that starts an engine) and returns a dict:
  cases    the driver cases (names unique across modules)
  scenario extra scenario keys (e.g. quit_mid_job)
  details  extra keys for the details dict the tests get
  after    callable(details, results), run after Krita quit while the engine still runs
  cleanup  callable(results), run at the end in any case
Running one module (pytest tests/test_krita_fidelity.py) runs only that module's cases.
"""

import os
import shutil
import sys
import tempfile
import types

import pytest
from PIL import Image

from tests.support import krita_session
from tests.support.krita_install import REPO
from tests.support.skips import skip_or_fail
from tests.support.style_images import style_pixels

KRITA_TIMEOUT_S = 1800           # the whole Krita session (normally ~2 min): only a hang reaches it
BUILDERS = []


def krita_cases(builder):
    """Decorator: add a module's cases to the session's one Krita run."""
    if builder not in BUILDERS:
        BUILDERS.append(builder)
    return builder


def krita_or_skip():
    if krita_session.krita_tools() is None:
        skip_or_fail("Krita, xvfb-run or timeout is not installed (run .ci/install_krita.sh)")


@pytest.fixture(scope="session")
def krita(fake_weights):
    """Yields (results by case name, session details) of the one Krita session."""
    krita_or_skip()
    from tests.support.engine_fixture import running_engine
    root = tempfile.mkdtemp(prefix="ns-krita-")   # short: ipc socket paths are limited to ~100 bytes
    built, results = [], None
    try:
        style = os.path.join(root, "style.png")
        Image.fromarray(style_pixels(7)).save(style)
        endpoint = "ipc://" + os.path.join(root, "engine.sock")
        ctx = types.SimpleNamespace(
            root=root, style=style, fake_weights=fake_weights, endpoint=endpoint,
            # What the installer's engine.json holds, plus the test weights and this checkout.
            engine_command=["/usr/bin/env", "PYTHONPATH=" + REPO, "NEURAL_STYLE_WEIGHTS=" + fake_weights,
                            sys.executable, "-m", "engine_server"])
        built = [builder(ctx) for builder in BUILDERS]
        scenario = {"endpoint": endpoint, "style_image": style, "cases": []}
        for part in built:
            scenario["cases"] += part.get("cases", [])
            scenario.update(part.get("scenario", {}))
        only = os.environ.get("NS_KRITA_CASES")     # a developer's shortcut: these cases only (use with -k)
        if only:
            scenario["cases"] = [item for item in scenario["cases"] if item["name"] in only.split(",")]
        names = [item["name"] for item in scenario["cases"]]
        assert len(names) == len(set(names)), "two modules registered the same Krita case name: %s" % names
        with running_engine(weights=fake_weights, endpoint=endpoint):
            results, details = krita_session.run_krita(os.path.join(root, "profile"), scenario,
                                                       timeout_s=KRITA_TIMEOUT_S)
            details["results"] = results
            for part in built:
                details.update(part.get("details", {}))
                if part.get("after"):
                    part["after"](details, results)
        yield (results or {}).get("cases", {}), details
    finally:
        for part in built:
            if part.get("cleanup"):
                part["cleanup"](results)
        if not os.environ.get("NS_KEEP_KRITA_WORKSPACE"):   # set it to look at krita.log and results.json
            shutil.rmtree(root, ignore_errors=True)
