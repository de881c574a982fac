"""shared/explain.py: what the artist reads for a failure, and what "Details" keeps."""

from shared.client_errors import EngineLost, EngineOutdated, EngineUnavailable, JobFailed
from shared.explain import explain

LONG_WEIGHTS = ("the VGG-19 weights file /home/a/.local/share/neural-style/weights/vgg19.h5 cannot be used: "
                "Unable to open object (object 'block1_conv1' doesn't exist) - HDF5 error stack ... " * 3)


def test_a_long_weights_error_is_one_short_sentence_with_the_rest_in_details():
    told = explain(EngineUnavailable("the engine could not be started: " + LONG_WEIGHTS), log_path="/l/engine.log")
    assert told.summary == "The style engine's VGG-19 weights are missing or damaged: run the Neural Style installer again."
    assert "HDF5" not in told.summary and len(told.summary) < 120
    assert "block1_conv1" in told.details and told.details.endswith("Engine log: /l/engine.log")


def test_protocol_paths_and_codes_stay_out_of_the_sentence():
    told = explain(JobFailed("bad_input", "styles[0].path: the style file /s.png is not an image", "styles[0].path"),
                   log_path="")
    assert told.summary == "The image or style could not be used: the style file /s.png is not an image."
    assert "styles[0]" in told.details


def test_known_failures():
    assert explain(EngineLost("no heartbeat"), log_path="").summary.startswith("The style engine stopped")
    assert "too small" in explain(code="bad_input", message="image of 8x8 pixels is too small for the network "
                                                            "layer conv5_1", log_path="").summary
    assert "memory" in explain(code="out_of_memory", message="x", log_path="").summary
    assert explain(RuntimeError("boom"), log_path="").summary == "The style could not be applied: see Details."


def test_an_engine_older_than_the_plugin_names_the_setting_and_the_restart():
    told = explain(EngineOutdated("the engine running on ipc:///r/engine.sock (pid 7) is older than this plugin: it "
                                  "does not know the option 'temporal_weight', set to 50.0; restart it: ...",
                                  "temporal_weight"), log_path="")
    assert told.summary == ("The style engine running now is older than this plugin and does not know the setting "
                            "\"temporal weight\": restart the engine (see Details), or set it back to its default.")
    assert "python3" not in told.summary and "'temporal_weight'" in told.details
