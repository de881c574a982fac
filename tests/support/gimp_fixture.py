"""The `gimp` fixture: ONE GIMP start per pytest session, running the cases of every collected test
module that registered some with @gimp_cases (test_gimp_editor.py, test_gimp_fidelity.py).

A builder gets a context (the workspace, the style image, the fake weights, the engine's endpoint)
and returns a dict:
  cases    driver cases (names unique across modules); "interactive" ones need an X server
  env      extra environment for GIMP
  start    callable(), run once the engine answers, before GIMP starts (may edit its cases)
  finish   callable(info, results), run after GIMP exited while the engine still runs (always)
  info     extra keys for the info dict the tests get
Running one module runs only that module's cases.
"""

import os
import socket
import types

import pytest
from PIL import Image

from tests.support import gimp_harness
from tests.support.skips import skip_or_fail
from tests.support.style_images import style_pixels

GIMP_TIMEOUT_S = 1800          # the whole GIMP session (normally ~3 min): only a hang reaches it
BUILDERS = []


def gimp_cases(builder):
    """Decorator: add a module's cases to the session's one GIMP run."""
    if builder not in BUILDERS:
        BUILDERS.append(builder)
    return builder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gimp_or_skip():
    location, reason = gimp_harness.gimp_location()
    if location is None:
        skip_or_fail(reason)
    return location


@pytest.fixture(scope="session")
def gimp(request):
    """Yields (results by case name, session info, workspace) of the one GIMP session."""
    gimp_or_skip()
    fake_weights = request.getfixturevalue("fake_weights")   # only once GIMP is known to be there
    from tests.support.engine_fixture import running_engine
    workspace = gimp_harness.GimpWorkspace()
    try:
        style = os.path.join(workspace.path, "style.png")
        Image.fromarray(style_pixels(7)).save(style)
        endpoint = "tcp://127.0.0.1:%d" % free_port()
        ctx = types.SimpleNamespace(workspace=workspace, style=style, fake_weights=fake_weights, endpoint=endpoint)
        built = [builder(ctx) for builder in BUILDERS]
        names = [item["name"] for part in built for item in part.get("cases", [])]
        assert len(names) == len(set(names)), "two modules registered the same GIMP case name: %s" % names
        results, info, cases = None, {}, []
        with gimp_harness.xvfb() as display, running_engine(weights=fake_weights, endpoint=endpoint):
            env = {"NEURAL_STYLE_ENDPOINT": endpoint}
            try:
                for part in built:
                    if part.get("start"):
                        part["start"]()
                    env.update(part.get("env", {}))
                    cases += [c for c in part.get("cases", []) if display or not c.get("interactive")]
                results, info = workspace.run_driver(cases, env, timeout=GIMP_TIMEOUT_S, display=display)
            finally:
                for part in built:
                    if part.get("finish"):
                        part["finish"](info, results)
        by_name = {case["name"]: case for case in (results or {}).get("cases", [])}
        info.update(display=display, complete=bool(results and results["complete"]), endpoint=endpoint,
                    planned=[case["name"] for case in cases])
        for part in built:
            info.update(part.get("info", {}))
        yield by_name, info, workspace
    finally:
        workspace.cleanup()
