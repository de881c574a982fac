"""Test-session set-up. Fixtures live in tests/support/ (one module per concern)."""

pytest_plugins = [
    "tests.support.weights_fixture",   # fake_weights: a Keras-layout VGG-19 notop file with seeded random weights
    "tests.support.engine_fixture",    # engine: a real engine_server subprocess on a temporary endpoint
]
