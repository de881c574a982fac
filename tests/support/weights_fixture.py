"""(to be written by the engine core work) session fixture `fake_weights` -> path of a Keras-layout VGG-19 notop h5."""
