"""The weights file: the fixture's layout is Keras' own, it loads through Keras' loader, bad files get one sentence."""

import shutil

import h5py
import numpy as np
import pytest

from engine_server.core.errors import WeightsError
from engine_server.core.model import CONV_LAYERS, VGG19Features
from engine_server.core.weights import find_weights, load_vgg19_weights
from tests.support.fake_vgg19 import write_fake_vgg19_weights


def test_fixture_has_the_keras_notop_layout(fake_weights):
    with h5py.File(fake_weights, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert [n for n in names if "_conv" in n] == list(CONV_LAYERS)
        assert [n for n in names if n.endswith("_pool")] == ["block%d_pool" % b for b in range(1, 6)]
        for name in names:
            weight_names = [w.decode() for w in f[name].attrs["weight_names"]]
            if name.endswith("_pool"):
                assert weight_names == []
                continue
            assert weight_names == [name + "_W_1:0", name + "_b_1:0"]
            kernel, bias = f[name][weight_names[0]], f[name][weight_names[1]]
            assert kernel.dtype == np.float32 and bias.dtype == np.float32
            assert kernel.shape[:2] == (3, 3) and bias.shape == (kernel.shape[3],)
        assert f["block1_conv1"]["block1_conv1_W_1:0"].shape == (3, 3, 3, 64)
        assert f["block5_conv4"]["block5_conv4_W_1:0"].shape == (3, 3, 512, 512)


def test_fake_weights_load_through_keras_with_the_files_values(fake_weights):
    weights = load_vgg19_weights(fake_weights)
    assert tuple(weights) == CONV_LAYERS
    with h5py.File(fake_weights, "r") as f:
        for name in ("block1_conv1", "block4_conv2"):
            np.testing.assert_array_equal(weights[name][0], f[name][name + "_W_1:0"][()])
            np.testing.assert_array_equal(weights[name][1], f[name][name + "_b_1:0"][()])


def test_seeded_fixture_is_reproducible_and_seed_dependent(tmp_path):
    a = write_fake_vgg19_weights(str(tmp_path / "a.h5"), seed=3)
    b = write_fake_vgg19_weights(str(tmp_path / "b.h5"), seed=3)
    c = write_fake_vgg19_weights(str(tmp_path / "c.h5"), seed=4)
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb, h5py.File(c, "r") as fc:
        key = "block2_conv1_W_1:0"
        np.testing.assert_array_equal(fa["block2_conv1"][key][()], fb["block2_conv1"][key][()])
        assert not np.array_equal(fa["block2_conv1"][key][()], fc["block2_conv1"][key][()])


def test_weights_path_order(monkeypatch, tmp_path):
    monkeypatch.setenv("NEURAL_STYLE_WEIGHTS", str(tmp_path / "env.h5"))
    assert find_weights(str(tmp_path / "explicit.h5")) == str(tmp_path / "explicit.h5")
    assert find_weights() == str(tmp_path / "env.h5")
    monkeypatch.delenv("NEURAL_STYLE_WEIGHTS")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert find_weights() == str(tmp_path / "data" / "neural-style" / "weights"
                                 / "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")


def test_a_file_without_the_h5_extension_loads_too(fake_weights, tmp_path):
    other = tmp_path / "vgg19.weights"
    shutil.copy(fake_weights, other)
    assert tuple(load_vgg19_weights(str(other))) == CONV_LAYERS


def _truncated(tmp_path, fake_weights):
    path = tmp_path / "truncated.h5"
    path.write_bytes(open(fake_weights, "rb").read()[:5_000_000])
    return path


def _text(tmp_path, fake_weights):
    path = tmp_path / "text.h5"
    path.write_text("<html>404 Not Found</html>")
    return path


def _empty(tmp_path, fake_weights):
    path = tmp_path / "empty.h5"
    path.write_bytes(b"")
    return path


def _wrong(tmp_path, fake_weights):
    """A valid HDF5 file in the legacy layout, but not VGG-19."""
    path = tmp_path / "wrong.h5"
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        group = f.create_group("dense")
        group.attrs["weight_names"] = np.array([b"dense_W:0"])
        group.create_dataset("dense_W:0", data=np.zeros((4, 4), np.float32))
    return path


def _with_top(tmp_path, fake_weights):
    """The notop layers plus a dense layer (like the file with the classifier)."""
    path = tmp_path / "with_top.h5"
    shutil.copy(fake_weights, path)
    with h5py.File(path, "a") as f:
        f.attrs["layer_names"] = np.concatenate([f.attrs["layer_names"], np.array([b"fc1"])])
        group = f.create_group("fc1")
        group.attrs["weight_names"] = np.array([b"fc1_W_1:0", b"fc1_b_1:0"])
        group.create_dataset("fc1_W_1:0", data=np.zeros((25088, 8), np.float32))
        group.create_dataset("fc1_b_1:0", data=np.zeros(8, np.float32))
    return path


def _wrong_shape(tmp_path, fake_weights):
    path = tmp_path / "wrong_shape.h5"
    shutil.copy(fake_weights, path)
    with h5py.File(path, "a") as f:
        del f["block1_conv1"]["block1_conv1_W_1:0"]
        f["block1_conv1"].create_dataset("block1_conv1_W_1:0", data=np.zeros((3, 3, 3, 32), np.float32))
    return path


BAD_FILES = {"missing": lambda tmp_path, _: tmp_path / "nope.h5", "folder": lambda tmp_path, _: tmp_path,
             "truncated": _truncated, "text": _text, "empty": _empty, "wrong": _wrong, "with_top": _with_top,
             "wrong_shape": _wrong_shape}


@pytest.mark.parametrize("kind", sorted(BAD_FILES))
def test_bad_weights_file_gives_one_clear_sentence(kind, tmp_path, fake_weights):
    path = str(BAD_FILES[kind](tmp_path, fake_weights))
    with pytest.raises(WeightsError) as caught:
        VGG19Features.load(path)
    message = str(caught.value)
    assert path in message
    assert "--weights PATH" in message and "installer.py" in message
    assert "\n" not in message and "Traceback" not in message
    assert caught.value.code == "weights"
