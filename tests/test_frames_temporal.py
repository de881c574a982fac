"""core/temporal.py and core/video.py: flow, warp, the trust mask, the temporal term, frames I/O."""

import os

import numpy as np
import pytest

from engine_server.core import temporal, video
from engine_server.core.errors import InputError
from engine_server.core.images import resize

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


def test_the_temporal_term_value_and_gradient():
    rng = np.random.default_rng(1)
    warped = rng.uniform(0, 255, (12, 10, 3)).astype(np.float32)
    weights = (rng.uniform(size=(12, 10)) > 0.3).astype(np.float32)
    term = temporal.TemporalTerm(warped, weights, weight=2.5)
    value, grad, parts = term(warped)
    assert value == 0 and not grad.any()
    x = warped + rng.normal(0, 5, warped.shape).astype(np.float32)
    value, grad, parts = term(x)
    expected = 0.5 * np.sum(weights[..., None] * (x - warped) ** 2)
    assert parts["temporal_loss"] == pytest.approx(expected, rel=1e-5)
    assert value == pytest.approx(2.5 * expected, rel=1e-5)
    np.testing.assert_allclose(grad, 2.5 * weights[..., None] * (x - warped), rtol=1e-5, atol=1e-4)
    coarse_value, coarse_grad, _ = term(resize(x, (6, 5)))     # another scale: ω and c resized to it
    assert coarse_grad.shape == (6, 5, 3) and np.isfinite(coarse_value)


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
    sequence = temporal.Sequence(weight=10.0)
    assert sequence.prepare(first) == (None, None)
    result = texture(80, 96, seed=9)
    sequence.done(result)
    warped, term = sequence.prepare(second)
    inner = (slice(8, -8), slice(8, -8 - SHIFT))
    assert np.mean(np.abs(warped[:, :-SHIFT] - result[:, SHIFT:])[inner]) < 4.0
    assert isinstance(term, temporal.TemporalTerm) and term.weight == 10.0


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
