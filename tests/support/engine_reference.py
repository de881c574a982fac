"""What a plain client (shared.client.Client) gets from the engine for a job: the oracle the editor
fidelity tests compare the editors' result layers with."""

import numpy as np

NUMPY_DTYPES = {"u8": np.uint8, "u16": "<u2", "f32": "<f4"}
FULL_SCALE = {"u8": 255.0, "u16": 65535.0, "f32": 1.0}
# The largest difference that is still "the same result": one 8-bit level, one 16-bit level, float
# rounding (f32 is sent back bit for bit; half floats round to 11 significant bits).
TOLERANCE = {"u8": 1 / 255, "u16": 1 / 65535, "f32": 1e-6, "f16": 2.0 ** -11}


def engine_result(endpoint, rgba, dtype, transfer, style_path, options, mask=None, timeout=300.0):
    """Submit `rgba` (H x W x 4 array in `dtype`'s samples, R, G, B, A) with an optional u8 mask
    (H x W); returns the result as an H x W x 4 array of the same dtype."""
    from shared.client import Client
    from shared.protocol import Pixels, StyleRef
    height, width = rgba.shape[:2]
    image = Pixels(width, height, 4, dtype, np.ascontiguousarray(rgba, NUMPY_DTYPES[dtype]).tobytes(), transfer)
    mask_pixels = None
    if mask is not None:
        mask_pixels = Pixels(width, height, 1, "u8", np.ascontiguousarray(mask, np.uint8).tobytes())
    with Client(endpoint, autostart=False) as client:
        job = client.submit(image, [StyleRef.file(style_path)], dict(options), mask=mask_pixels)
        event = job.wait(timeout)
    assert event.type == "result", "the engine's own job ended with %s: %r" % (event.type, event.header)
    result = event.pixels
    assert (result.width, result.height, result.channels, result.dtype) == (width, height, 4, dtype), result
    assert result.transfer == transfer, "the engine answered %s for a %s job" % (result.transfer, transfer)
    return np.frombuffer(result.data, NUMPY_DTYPES[dtype]).reshape(height, width, 4)


def assert_same_result(editor, engine, tolerance, what):
    """editor, engine: float arrays 0..1 (H x W x 4). Reports where and how much they differ."""
    assert editor.shape == engine.shape, "%s: shape %s, the engine's %s" % (what, editor.shape, engine.shape)
    difference = np.abs(editor.astype(np.float64) - engine.astype(np.float64))
    if tolerance == TOLERANCE["f16"]:   # relative: half floats keep 11 significant bits
        allowed = tolerance * np.maximum(np.abs(engine), 2.0 ** -13)
    else:
        allowed = np.full(difference.shape, tolerance * 1.0001)
    bad = difference > allowed
    if bad.any():
        y, x, c = np.argwhere(bad)[0]
        raise AssertionError(
            "%s: %d of %d samples differ from the engine's own result (max %.6f, first at x=%d y=%d "
            "channel %s: editor %.6f, engine %.6f)" % (what, bad.sum(), bad.size, difference.max(), x, y,
                                                      "RGBA"[c], editor[y, x, c], engine[y, x, c]))
