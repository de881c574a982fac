"""core/temporal.py and core/video.py: flow, warp, the trust mask, the temporal term, frames I/O."""

import os

import numpy as np
import pytest

from engine_server.core import temporal, video
from engine_server.core.errors import InputError
from engine_server.core.images import resize
from shared.options import defaults

SHIFT = 3


def texture(height, width, seed=0):
    """A smooth random texture (flow needs structure at several scales)."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (height // 6 + 2, width // 6 + 2, 3)).astype(np.float32)
    fine = rng.uniform(-30, 30, (height, width, 3)).astype(np.float32)
    return (resize(coarse, (height, width)) + resize(fine[::2, ::2], (height, width))).clip(0, 255)


@pytest.fixture(scope="module")
def pan():
    """Two frames of a camera panning right: frame 1 (p) = frame 0 (p + SHIFT in x)."""
    big = texture(80, 96 + SHIFT)
    return big[:, :96].copy(), big[:, SHIFT:SHIFT + 96].copy()


def test_flow_finds_the_motion_and_warping_undoes_it(pan):
    first, second = pan
    backward = temporal.optical_flow(first, second)
    inner = (slice(8, -8), slice(8, -8 - SHIFT))
    assert np.median(backward[inner][..., 0]) == pytest.approx(SHIFT, abs=0.25)
    assert np.median(backward[inner][..., 1]) == pytest.approx(0.0, abs=0.25)
    warped, inside = temporal.warp(first, backward)
    assert np.mean(np.abs(warped - second)[inner]) < 3.0          # of 0..255
    assert not inside[:, -1].any() and inside[inner].all()        # the right edge comes from outside frame 0


def test_the_trust_mask_drops_the_new_strip_and_occlusions(pan):
    first, second = pan
    backward = temporal.optical_flow(first, second)
    forward = temporal.optical_flow(second, first)
    weights = temporal.consistency(backward, forward)
    assert weights[:, -1].sum() == 0                          # entered from beyond the edge: nothing to hold
    assert weights[8:-8, 8:-8 - SHIFT].mean() > 0.95
    # Flows that disagree (as at an occlusion) are not trusted.
    assert temporal.consistency(backward, backward)[8:-8, 8:-8].mean() < 0.05


def test_previous_into_refuses_frames_of_another_size(pan):
    first, second = pan
    with pytest.raises(InputError, match="same size"):
        temporal.previous_into(first, second[:, :90], first)


def periodic(side, seed, period=64):
    """A smooth texture of period `period` in both directions: at 2x the side it is itself, 2x2 times."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] * (2 * np.pi / period)
    image = np.full((side, side, 3), 127.5)
    for channel in range(3):
        for _ in range(8):
            kx, ky = rng.integers(-6, 7, 2)
            image[..., channel] += rng.uniform(10, 25) * np.cos(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
    return np.clip(image, 0, 255).astype(np.float32)


@pytest.mark.parametrize("normalization", ["size", "seed"])
def test_the_temporal_term_value_and_gradient(normalization):
    rng = np.random.default_rng(1)
    warped = rng.uniform(0, 255, (12, 16, 3)).astype(np.float32)
    weights = (rng.uniform(size=(12, 16)) > 0.3).astype(np.float32)
    options = {"loss_normalization": normalization, "content_layer": "conv2_2"}
    term = temporal.TemporalTerm(warped, weights, weight=2.5, options=options)
    value, grad, parts = term(warped)
    assert value == 0 and not grad.any()
    x = warped + rng.normal(0, 5, warped.shape).astype(np.float32)
    value, grad, parts = term(x)
    squares = np.sum(weights[..., None] * (x - warped) ** 2)
    # size: a mean over the D = 3 H W pixel values (Ruder et al.); seed: the raw half sum, times
    # N_c M_c / D (conv2_2: 128 channels on a 6x8 grid for a 12x16 picture).
    expected = squares / (3 * 12 * 16) if normalization == "size" else 0.5 * squares * (128 * 6 * 8) / (3 * 12 * 16)
    assert parts["temporal_loss"] == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(2.5 * expected, rel=1e-5)
    np.testing.assert_allclose(grad, 2.5 * 2 * expected / squares * weights[..., None] * (x - warped),
                               rtol=1e-5, atol=1e-6)
    coarse_value, coarse_grad, _ = term(resize(x, (6, 8)))     # another scale: ω and c resized to it
    assert coarse_grad.shape == (6, 8, 3) and np.isfinite(coarse_value)


def test_the_temporal_terms_balance_to_the_style_does_not_depend_on_the_size(fake_model):
    """The same picture at 64 px and at 128 px (itself 2x2 times: a periodic texture, no seams): the
    style term (per position, shallow layers so that the border counts little) and the default
    temporal term keep their ratio, so a temporal weight means the same at every size."""
    from engine_server.core.stylize import StyleInput, losses

    options = {"style_layers": ("conv1_1", "conv2_1"), "style_layer_weights": (1.0, 1.0)}
    ratios = []
    for side in (64, 128):
        content, candidate, warped = periodic(side, 2), periodic(side, 4), periodic(side, 5)
        parts = losses(fake_model, content, [StyleInput(periodic(64, 3))], candidate, options)
        value, _, _ = temporal.TemporalTerm(warped, np.ones((side, side), np.float32), 1000.0)(candidate)
        ratios.append(value / sum(parts["weighted"]["style"].values()))
    assert ratios[1] == pytest.approx(ratios[0], rel=0.1)


@pytest.mark.parametrize("size", [(64, 80), (32, 40)])
def test_under_seed_the_temporal_term_keeps_its_balance_to_the_content_term(fake_model, size):
    """seed turns the content term into the lecture's sum, and the temporal term by the same factor,
    on the final scale (64x80) and on a coarse one (32x40) of a job whose final size is 64x80."""
    from engine_server.core.losses import Objective

    final = (64, 80)
    content, candidate = texture(*size, seed=2), texture(*size, seed=4)
    warped, weights = texture(*final, seed=5), np.ones(final, np.float32)
    target = fake_model.features(content, ["conv4_2"])["block4_conv2"].numpy()
    style = {name: np.eye(n, dtype=np.float32) for name, n in (("block1_conv1", 64), ("block2_conv1", 128))}
    ratios = {}
    for normalization in ("size", "seed"):
        options = dict(defaults(), loss_normalization=normalization, style_layers=("conv1_1", "conv2_1"),
                       style_layer_weights=(1.0, 1.0))
        _, _, parts = Objective(fake_model, options, target, style, final_size=final).evaluate(candidate)
        value, _, _ = temporal.TemporalTerm(warped, weights, 1000.0, options)(candidate)
        ratios[normalization] = value / parts["weighted"]["content"]
    assert ratios["seed"] == pytest.approx(ratios["size"], rel=1e-4)


def test_stylize_adds_the_extra_term_and_it_holds_the_pixels(fake_model):
    from engine_server.core.stylize import StyleInput, stylize

    content = texture(48, 48, seed=2)
    style = texture(48, 48, seed=3)
    target = texture(48, 48, seed=4)
    options = {"iterations": 6, "max_size": 48}
    seen = []
    loose = stylize(fake_model, content, [StyleInput(style)], options, init_image=target)
    held = stylize(fake_model, content, [StyleInput(style)], options, init_image=target,
                   extra_loss=temporal.TemporalTerm(target, np.ones((48, 48), np.float32), 1e6),
                   on_progress=lambda progress: seen.append(progress))
    assert np.mean(np.abs(held - target)) < 0.25 * np.mean(np.abs(loose - target))
    assert seen[-1].total_loss > 0


def test_sequence_starts_each_frame_from_the_warped_previous_result(pan):
    first, second = pan
    sequence = temporal.Sequence(weight=10.0, options={"loss_normalization": "seed"})
    assert sequence.prepare(first) == (None, None)
    result = texture(80, 96, seed=9)
    sequence.done(result)
    warped, term = sequence.prepare(second)
    inner = (slice(8, -8), slice(8, -8 - SHIFT))
    assert np.mean(np.abs(warped[:, :-SHIFT] - result[:, SHIFT:])[inner]) < 4.0
    assert isinstance(term, temporal.TemporalTerm) and term.weight == 10.0 and term.normalization == "seed"


def test_video_round_trip_and_an_unreadable_video(tmp_path):
    path = str(tmp_path / "clip.mp4")
    writer = video.VideoWriter(path, 12.0, (48, 64))
    frames = [texture(48, 64, seed=k) for k in range(3)]
    for frame in frames:
        writer.write(frame)
    writer.close()
    reader = video.VideoReader(path)
    assert reader.fps == pytest.approx(12.0)
    read = list(reader)
    assert len(read) == 3 and read[0].shape == (48, 64, 3)
    assert np.mean(np.abs(read[1] - frames[1])) < 12.0         # lossy MPEG-4, but the same pictures
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    with pytest.raises(InputError, match="broken.mp4 cannot be read"):
        video.VideoReader(str(broken))


def test_folder_images_in_natural_order_and_an_empty_folder(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in video.folder_images(str(tmp_path))] == ["f1.png", "f2.png", "f10.png"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty has no images"):
        video.folder_images(str(tmp_path / "empty"))
