"""Session fixture `fake_weights`: path of a Keras-layout VGG-19 notop h5 with seeded random weights."""

import pytest

from tests.support.fake_vgg19 import write_fake_vgg19_weights
from shared.paths import WEIGHTS_FILENAME


@pytest.fixture(scope="session")
def fake_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("weights")
    return str(write_fake_vgg19_weights(str(folder / WEIGHTS_FILENAME), seed=0))


@pytest.fixture(scope="session")
def fake_model(fake_weights):
    """A VGG19Features built from `fake_weights` (once per test session)."""
    from engine_server.core.model import VGG19Features

    return VGG19Features.load(fake_weights)
