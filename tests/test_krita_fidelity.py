"""The layer Krita ends with is the engine's own result: for the same pixels, style and options, a
plain client (shared.client.Client) gets the same samples from the same engine — within one level
in 8-bit and 16-bit, within float rounding (F32 exact, F16 half rounding) — for 8/16/float and
linear/perceptual documents, with a hard and a feathered selection.

The oracle is independent of the plugin: pytest decodes Krita's bytes itself (integers are stored
B, G, R, A; floats R, G, B, A; the elle "g10" profiles are linear light), cuts the selection's
bounding box, and sends that with the selection's own coverage as the mask. A red/blue swap, a
flip, a wrong transfer curve or lost alpha anywhere on the plugin's way there or back fails here.
Krita runs once per session (tests/support/krita_fixture.py) for these cases and test_krita_plugin's.
"""

import base64

import numpy as np
import pytest

from tests.support import krita_session
from tests.support.engine_reference import TOLERANCE, assert_same_result, engine_result
from tests.support.krita_fixture import krita_cases

pytestmark = pytest.mark.editor

WIDTH, HEIGHT = 64, 48
RECT = (12, 8, 40, 32)                          # x, y, w, h of the selection
PERCEPTUAL, LINEAR = "sRGB-elle-V2-srgbtrc.icc", "sRGB-elle-V2-g10.icc"
KRITA_DTYPES = {"U8": np.uint8, "U16": "<u2", "F16": "<f2", "F32": "<f4"}
WIRE = {"U8": "u8", "U16": "u16", "F16": "f32", "F32": "f32"}
SCALE = {"U8": 255.0, "U16": 65535.0, "F16": 1.0, "F32": 1.0}
# name: (depth, profile, selection: None | "hard" | "feathered", engine soft edge in px)
CASES = {
    "fid_u8_srgb_hard": ("U8", PERCEPTUAL, "hard", 0),
    "fid_u8_srgb_feathered": ("U8", PERCEPTUAL, "feathered", 2),
    "fid_u16_srgb_feathered": ("U16", PERCEPTUAL, "feathered", 0),
    "fid_u16_linear_hard": ("U16", LINEAR, "hard", 2),
    "fid_f16_linear_feathered": ("F16", LINEAR, "feathered", 0),
    "fid_f32_linear_hard": ("F32", LINEAR, "hard", 0),
    "fid_f32_srgb_whole_layer": ("F32", PERCEPTUAL, None, 0),
}
JOB = {"iterations": 4, "max_size": 64, "preview_interval_s": 0.2, "advanced": {"seed": 11}}


@krita_cases
def fidelity_cases(ctx):
    cases = []
    for name, (depth, profile, selection, feather) in CASES.items():
        case = dict(JOB, name=name, kind="fidelity", depth=depth, profile=profile, width=WIDTH, height=HEIGHT,
                    feather=feather)
        if selection:
            case["selection"] = list(RECT)
        if selection == "feathered":
            case["feather_selection"] = 4
        cases.append(case)

    def after(details, results):
        """While the engine still runs: the same jobs from a plain client."""
        references = details.setdefault("fidelity_references", {})
        for name in CASES:
            record = ((results or {}).get("cases") or {}).get(name)
            if record and "exception" not in record and record.get("ok"):
                try:
                    references[name] = reference_job(ctx, name, record)
                except Exception as error:   # reported by the test that needs it
                    references[name] = error

    return {"cases": cases, "after": after}


def krita_rgba(raw, depth):
    """Krita's bytes of a whole-document pixelData() -> H x W x 4 array, R, G, B, A order."""
    data = np.frombuffer(raw, KRITA_DTYPES[depth]).reshape(HEIGHT, WIDTH, 4)
    return data[..., [2, 1, 0, 3]] if depth in ("U8", "U16") else data


def layer_bytes(snapshot, name):
    found = [item for item in snapshot["layers"] if item["name"] == name]
    assert len(found) == 1, [item["name"] for item in snapshot["layers"]]
    return base64.b64decode(found[0]["pixels"])


def region(record):
    """The selection's bounding box (the whole layer without one): x, y, w, h."""
    return tuple(record["selection_bounds"]) if "selection_bounds" in record else (0, 0, WIDTH, HEIGHT)


def reference_job(ctx, name, record):
    depth, profile, selection, _ = CASES[name]
    x, y, w, h = region(record)
    source = krita_rgba(layer_bytes(record["before"], "Paint"), depth)[y:y + h, x:x + w]
    if depth == "F16":
        source = source.astype(np.float32)
    mask = None
    if selection:
        coverage = np.frombuffer(base64.b64decode(record["selection_pixels"]), np.uint8).reshape(HEIGHT, WIDTH)
        mask = coverage[y:y + h, x:x + w]
    transfer = "linear" if profile == LINEAR else "srgb"
    return engine_result(ctx.endpoint, source, WIRE[depth], transfer, ctx.style, record["options"], mask)


def fidelity_case(krita, name):
    cases, details = krita
    assert name in cases, "Krita did not run case %r (exit %s):\n%s" % (
        name, details["exit_code"], krita_session.log_tail(details))
    record = cases[name]
    assert "exception" not in record, record["exception"]
    assert record["ok"] and record["finished_in_time"], record
    assert record["finished"]["outcome"] == "done", record["finished"]
    reference = details.get("fidelity_references", {}).get(name)
    if isinstance(reference, Exception):
        raise reference
    assert reference is not None, "no engine reference for %s" % name
    return record, reference


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_result_layer_is_the_engines_own_result(krita, name):
    record, reference = fidelity_case(krita, name)
    depth, profile, selection, feather = CASES[name]
    assert record["profile"] == profile, "the document got profile %r" % record["profile"]
    options = record["options"]
    assert (options["iterations"], options["max_size"], options["seed"], options["feather"]) == (
        JOB["iterations"], JOB["max_size"], JOB["advanced"]["seed"], feather), options
    if selection == "hard":
        assert record["selection_bounds"] == list(RECT)
    if selection == "feathered":
        coverage = np.frombuffer(base64.b64decode(record["selection_pixels"]), np.uint8)
        assert ((coverage > 0) & (coverage < 255)).sum() > 50, "the feathered selection has no soft edge"
    results = [item for item in record["after"]["layers"] if item["name"] == "Paint – Starry"]
    assert len(results) == 1, [item["name"] for item in record["after"]["layers"]]
    assert (results[0]["depth"], results[0]["model"]) == (depth, "RGBA")
    for name_ in ("Background", "Paint"):
        assert layer_bytes(record["before"], name_) == layer_bytes(record["after"], name_), name_

    x, y, w, h = region(record)
    editor = krita_rgba(layer_bytes(record["after"], "Paint – Starry"), depth).astype(np.float64) / SCALE[depth]
    engine = reference.astype(np.float64) / SCALE[depth]
    source = krita_rgba(layer_bytes(record["before"], "Paint"), depth).astype(np.float64) / SCALE[depth]
    outside = np.ones((HEIGHT, WIDTH), bool)
    outside[y:y + h, x:x + w] = False
    assert (editor[outside] == 0).all(), "the result layer has pixels outside the job's region"
    # The job did something, so "equal" is not "both unchanged":
    change = np.abs(engine[..., :3] - source[y:y + h, x:x + w, :3])[engine[..., 3] > 0.5].mean()
    assert change > 1 / 255, "the engine's result hardly differs from the source (%.5f)" % change
    tolerance = TOLERANCE["f16" if depth == "F16" else WIRE[depth]]
    assert_same_result(editor[y:y + h, x:x + w], engine, tolerance, "%s %s" % (depth, profile))
