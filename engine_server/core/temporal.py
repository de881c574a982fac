"""Temporal coherence for a sequence of frames (Ruder, Dosovitskiy, Brox: "Artistic style transfer
for videos", 2016), short-term version.

For frame i, the previous result is warped into frame i with the optical flow between the two
content frames; frame i starts from that warped result, and a temporal term keeps x close to it
where c = 1 (ω: the warped previous result, pixels 0..255, D = 3·H·W of the scale at work):

- "size" (default): L_temporal = Σ c · (x - ω)² / D, Ruder et al.'s own form, a mean per pixel
  value, so a weight means the same at every size, as the other terms (core/losses.py) do;
- "seed": the raw ½ Σ c · (x - ω)², times N_c·M_c(final)/D (the content layer's feature values of
  the final picture per pixel value): what turns the "size" content term into the "seed" one, so
  the temporal/content balance is the same under both normalizations and on every scale.

 c is 0 where the flow cannot be trusted: pixels occluded or
disoccluded between the frames (forward and backward flow disagree), on motion boundaries, and
where the flow points outside the previous frame. The flow is OpenCV's DIS (dense inverse search),
computed on the content frames, never on the stylized ones.
"""

import numpy as np

from .errors import InputError
from .images import resize
from .losses import check_normalization, feature_positions
from .model import pools_before


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InputError("frames need OpenCV (pip install opencv-python-headless; the installer adds it)")
    return cv2


def _gray8(rgb):
    return np.asarray(np.clip(np.round(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]), 0, 255),
                      np.uint8)


def optical_flow(source, target):
    """Dense flow (H, W, 2: dx, dy) with target(p) ≈ source(p + flow(p)) for two RGB 0..255 frames."""
    cv2 = _cv2()
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(_gray8(target), _gray8(source), None)


def warp(image, flow):
    """image sampled at p + flow(p) (bilinear); also the mask of samples that fell inside the image."""
    cv2 = _cv2()
    height, width = flow.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(np.asarray(image, np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped, inside


def consistency(backward, forward):
    """Ruder et al.'s weights c (H, W float32, 0 or 1) for frame i.

    backward: flow from frame i into frame i-1 (frame i-1 sampled at p + backward(p) is frame i);
    forward: flow from frame i-1 into frame i."""
    forward_at, inside = warp(forward, backward)
    both = np.sum(np.square(forward_at + backward), axis=-1)
    occluded = both > 0.01 * (np.sum(np.square(forward_at), axis=-1) + np.sum(np.square(backward), axis=-1)) + 0.5
    du_y, du_x = np.gradient(backward[..., 0])
    dv_y, dv_x = np.gradient(backward[..., 1])
    boundary = (du_x ** 2 + du_y ** 2 + dv_x ** 2 + dv_y ** 2) > 0.01 * np.sum(np.square(backward), axis=-1) + 0.002
    return (inside & ~occluded & ~boundary).astype(np.float32)


def previous_into(previous_content, content, previous_result):
    """(ω, c): the previous result warped into this frame, and the weights where it can be trusted.
    All three images are HxWx3 0..255 of this frame's size (the result resized to it if needed)."""
    previous_content = np.asarray(previous_content, np.float32)
    content = np.asarray(content, np.float32)
    if previous_content.shape != content.shape:
        raise InputError("frames must all have the same size: %dx%d after %dx%d"
                         % (content.shape[1], content.shape[0], previous_content.shape[1], previous_content.shape[0]))
    backward = optical_flow(previous_content, content)
    forward = optical_flow(content, previous_content)
    result = np.asarray(previous_result, np.float32)
    if result.shape[:2] != content.shape[:2]:
        result = resize(result, content.shape[:2])
    warped, _ = warp(result, backward)
    return np.clip(warped, 0.0, 255.0), consistency(backward, forward)


def content_values(size, content_layer):
    """N_c·M_c: the content layer's feature values for an image of `size` (VGG-19: 64 channels in
    block 1, doubling per block up to 512)."""
    return min(64 << pools_before(content_layer), 512) * feature_positions(size, content_layer)


class TemporalTerm:
    """`stylize(..., extra_loss=TemporalTerm(ω, c, weight, options))`: weight · L_temporal (module doc)
    and its gradient, at whatever size a scale works on (ω and c resized to it). ω's size is the
    final one; options give loss_normalization and content_layer (the defaults' when left out)."""

    def __init__(self, warped, weights, weight, options=None):
        from shared.options import defaults

        options = {**defaults(), **dict(options or {})}
        self.warped = np.asarray(warped, np.float32)
        self.weights = np.asarray(weights, np.float32)
        self.weight = float(weight)
        self.normalization = check_normalization(options.get("loss_normalization", "size"))
        self.final_values = content_values(self.warped.shape[:2], options["content_layer"])
        self._sized = {}

    def _at(self, size):
        if size not in self._sized:
            if size == self.warped.shape[:2]:
                self._sized[size] = (self.warped, self.weights[..., np.newaxis])
            else:
                mask = resize(np.repeat(self.weights[..., np.newaxis], 3, axis=-1), size)[..., :1]
                self._sized[size] = (resize(self.warped, size), (mask > 0.999).astype(np.float32))
        return self._sized[size]

    def scale(self, size):
        """L_temporal = scale · Σ c (x - ω)² at an image of `size`."""
        values = 3.0 * size[0] * size[1]
        return 0.5 * self.final_values / values if self.normalization == "seed" else 1.0 / values

    def __call__(self, image):
        """image HxWx3 -> (weighted value, gradient HxWx3 float32, {"temporal_loss": unweighted value})."""
        size = tuple(image.shape[:2])
        warped, weights = self._at(size)
        scale = self.scale(size)
        difference = weights * (np.asarray(image, np.float32) - warped)
        value = scale * float(np.sum(difference * difference, dtype=np.float64))
        gradient = (2.0 * scale * self.weight) * difference
        return self.weight * value, gradient.astype(np.float32), {"temporal_loss": value}


def compensated_difference(previous_result, result, backward, weights):
    """Flicker between two consecutive results once motion is compensated: the mean absolute
    difference (0..255) between `result` and `previous_result` warped by `backward`, over c = 1."""
    warped, _ = warp(previous_result, backward)
    mask = np.asarray(weights, np.float32)[..., np.newaxis]
    count = float(mask.sum()) * 3
    if count == 0:
        return float("nan")
    return float(np.sum(np.abs(np.asarray(result, np.float32) - warped) * mask) / count)


# Options frame k > 0 runs with: the warped result already has every scale's structure, and
# coarse-to-fine would first blur what the warp carried over.
FRAME_RUN = {"scales": 1}


def follow(previous_content, content, previous_result, weight, options=None):
    """Frame k > 0 of a shot, as `batch --frames` and a submit with previous_frame both run it:
    (start image ω, TemporalTerm or None when weight is 0, c). Images HxWx3 0..255, at the working size;
    stylize() then runs with init_image=ω, extra_loss=the term and options updated by FRAME_RUN."""
    warped, weights = previous_into(previous_content, content, previous_result)
    return warped, (TemporalTerm(warped, weights, weight, options) if weight > 0 else None), weights


class Sequence:
    """The frames of one shot, in order: what each frame starts from and the term that holds it.

        sequence = Sequence(weight, options)
        for content in frames:                       # HxWx3 0..255, all at the working size
            init, extra = sequence.prepare(content)  # (None, None) for the first frame
            result = stylize(..., init_image=init, extra_loss=extra)
            sequence.done(result)
    """

    def __init__(self, weight, options=None):
        self.weight = float(weight)
        self.options = options
        self._previous = None          # (content, result) of the last frame
        self._content = None

    def prepare(self, content):
        self._content = np.asarray(content, np.float32)
        if self._previous is None:
            return None, None
        warped, term, weights = follow(self._previous[0], self._content, self._previous[1], self.weight, self.options)
        self.coverage = float(weights.mean())
        return warped, term

    def done(self, result):
        self._previous = (self._content, np.asarray(result, np.float32))
