"""Test-session set-up. Fixtures live in tests/support/ (one module per concern)."""

pytest_plugins = [
    "tests.support.weights_fixture",   # fake_weights: a Keras-layout VGG-19 notop file with seeded random weights
    "tests.support.engine_fixture",    # engine: a real engine_server subprocess on a temporary endpoint
    "tests.support.krita_fixture",     # krita: one Krita session for the cases of every collected module
    "tests.support.gimp_fixture",      # gimp: one GIMP session likewise
]
