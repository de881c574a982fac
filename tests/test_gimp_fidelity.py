"""The layer GIMP ends with is the engine's own result: for the same pixels, style and options, a
plain client (shared.client.Client) gets the same samples from the same engine — within one level
in 8-bit, within the image's own storage rounding in 16-bit and float — for 8/16/float and
linear/perceptual images, with a hard and a feathered selection.

The oracle does not use the plug-in's code: the driver dumps the source and the result in the
perceptual format of the image's depth (what the protocol calls "srgb") and the selection's
coverage over the layer; pytest sends those with options built from shared/options.py's defaults
and this case's arguments. A red/blue swap, a flip, a wrong transfer curve or lost alpha on the
plug-in's way there or back fails here. GIMP runs once per session (tests/support/gimp_fixture.py).
"""

import numpy as np
import pytest

from tests.support.engine_reference import NUMPY_DTYPES, TOLERANCE, assert_same_result, engine_result
from tests.support.gimp_fixture import gimp_cases

pytestmark = pytest.mark.editor

SELECTION = (16, 20, 24, 20)     # image coordinates, inside "Photo" (48x40 at (8, 12))
ARGS = {"iterations": 4, "max-size": 64, "preview-interval-s": 0.5, "seed": 11}
DTYPE = {"u8-srgb": "u8", "u16-srgb": "u16", "u16-linear": "u16", "float-linear": "f32", "float-srgb": "f32"}
# name: (precision, selection: None | "hard" | "feathered", engine soft edge in px)
CASES = {
    "fid-u8-srgb-hard": ("u8-srgb", "hard", 0),
    "fid-u8-srgb-feathered": ("u8-srgb", "feathered", 2),
    "fid-u16-srgb-feathered": ("u16-srgb", "feathered", 0),
    "fid-u16-linear-hard": ("u16-linear", "hard", 2),
    "fid-float-linear-feathered": ("float-linear", "feathered", 0),
    "fid-float-srgb-whole-layer": ("float-srgb", None, 0),
}


@gimp_cases
def fidelity_cases(ctx):
    cases = []
    for name, (precision, selection, feather) in CASES.items():
        case = {"name": name, "kind": "fidelity", "precision": precision,
                "args": dict(ARGS, feather=feather, **{"style-file": ctx.style})}
        if selection:
            case["selection"] = list(SELECTION)
        if selection == "feathered":
            case["feather_selection"] = 6
        cases.append(case)
    references = {}

    def finish(info, results):
        """While the engine still runs: the same jobs from a plain client."""
        for record in (results or {}).get("cases", []):
            if record["name"] in CASES and record.get("status") == "success":
                try:
                    references[record["name"]] = reference_job(ctx, record)
                except Exception as error:   # reported by the test that needs it
                    references[record["name"]] = error

    return {"cases": cases, "finish": finish, "info": {"fidelity_references": references}}


def job_options(name, style):
    """The options the plug-in must send: the option table's defaults, strength 50, this case's arguments."""
    from shared.options import defaults, strength_to_style_weight
    from shared.protocol import EXTRA_OPTIONS
    options = {key: list(value) if isinstance(value, tuple) else value for key, value in defaults().items()
               if value != ()}
    options.update({option.name: option.default for option in EXTRA_OPTIONS})
    options["style_weight"] = strength_to_style_weight(50.0)
    options.update({key.replace("-", "_"): value for key, value in ARGS.items()})
    options["feather"] = CASES[name][2]
    return options


def load(dump, dtype, channels=4):
    data = np.fromfile(dump["path"], dtype=NUMPY_DTYPES[dtype])
    return data.reshape(dump["height"], dump["width"], channels) if channels > 1 else \
        data.reshape(dump["height"], dump["width"])


def reference_job(ctx, record):
    dtype = DTYPE[CASES[record["name"]][0]]
    source = load(record["source_before"], dtype)
    mask = load(record["mask_dump"], "u8", 1) if "mask_dump" in record else None
    return engine_result(ctx.endpoint, source, dtype, "srgb", ctx.style, job_options(record["name"], ctx.style), mask)


def storage_tolerance(precision, engine):
    """How far a value may move when GIMP stores it at the image's precision and the test reads it
    back perceptually: one level in 8-bit; in u16-linear half a linear level seen through the sRGB
    curve's slope (up to 12.92 near black) plus one level; float32 pow() round trips."""
    if precision == "u16-linear":
        p = np.clip(engine[..., :3], 0.0, 1.0)
        linear = np.where(p <= 0.04045, p / 12.92, ((p + 0.055) / 1.055) ** 2.4)
        slope = np.where(p <= 0.04045, 12.92, 1.055 / 2.4 * np.maximum(linear, 1e-12) ** (1 / 2.4 - 1))
        allowed = np.empty(engine.shape)
        allowed[..., :3] = (0.5 * slope + 1.0) / 65535
        allowed[..., 3] = 1.0 / 65535
        return allowed
    return {"u8-srgb": TOLERANCE["u8"], "u16-srgb": TOLERANCE["u16"], "float-srgb": TOLERANCE["f32"],
            "float-linear": 1e-5}[precision]


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_result_layer_is_the_engines_own_result(gimp, name):
    by_name, info, _ = gimp
    assert name in by_name, "GIMP did not get to case %r (exit %s):\n%s" % (
        name, info.get("exit_code"), info.get("output", "")[-4000:])
    record = by_name[name]
    assert "driver_error" not in record, record["driver_error"]
    assert record["status"] == "success", record["message"]
    reference = info["fidelity_references"].get(name)
    if isinstance(reference, Exception):
        raise reference
    precision, selection, _ = CASES[name]
    dtype = DTYPE[precision]
    assert record["precision_before"] == precision.replace("float-srgb", "float-non-linear").replace(
        "-srgb", "-non-linear"), record["precision_before"]
    assert [layer["name"] for layer in record["layers"]] == ["Photo \u2013 style", "Photo", "Background"]
    assert (record["result"]["width"], record["result"]["height"], record["result"]["offsets"]) == (48, 40, [8, 12])
    if selection == "feathered":
        coverage = load(record["mask_dump"], "u8", 1)
        assert ((coverage > 0) & (coverage < 255)).sum() > 50, "the feathered selection has no soft edge"
    with open(record["source_before"]["path"], "rb") as a, open(record["source_after"]["path"], "rb") as b:
        assert a.read() == b.read(), "the source layer changed"
    scale = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}[dtype]
    source = load(record["source_before"], dtype).astype(np.float64) / scale
    editor = load(record["result_dump"], dtype).astype(np.float64) / scale
    engine = reference.astype(np.float64) / scale
    inside = engine[..., 3] > 0.25
    change = np.abs(engine[..., :3] - source[..., :3])[inside].mean()
    assert change > 1 / 255, "the engine's result hardly differs from the source (%.5f)" % change
    tolerance = storage_tolerance(precision, engine)
    if isinstance(tolerance, np.ndarray):
        bad = np.abs(editor - engine) > tolerance
        assert not bad.any(), "%s: %d samples differ beyond storage rounding (max %.6f)" % (
            precision, bad.sum(), np.abs(editor - engine).max())
    else:
        assert_same_result(editor, engine, tolerance, precision)
