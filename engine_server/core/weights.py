"""Find and read the Keras VGG-19 "notop" weights file through Keras' own legacy-h5 loader.

The real file (the one `keras.applications.VGG19` downloads) and the test fixture take exactly the
same path: build Keras' VGG-19 without weights, `load_weights(path)`, then copy the kernels and
biases out as NumPy arrays. Any failure becomes a WeightsError with one sentence saying which
path, what is wrong and how to get the right file.
"""

import logging
import os

import numpy as np

from shared.paths import WEIGHTS_FILENAME, weights_path

from .errors import WeightsError

log = logging.getLogger(__name__)

HOW_TO_GET = ("install it with `python3 installer.py --weights FILE` (a copy of the Keras file %s you have) or "
              "`python3 installer.py` (downloads it), or pass --weights PATH / set $NEURAL_STYLE_WEIGHTS"
              % WEIGHTS_FILENAME)
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def find_weights(explicit=None):
    """Return the path to use (explicit, then $NEURAL_STYLE_WEIGHTS, then the installer's place)."""
    return os.path.abspath(os.path.expanduser(weights_path(explicit)))


def check_weights_file(path):
    """Cheap checks (exists, is a file, HDF5 signature); WeightsError otherwise."""
    if not os.path.exists(path):
        raise WeightsError("VGG-19 weights file %s does not exist; %s." % (path, HOW_TO_GET))
    if not os.path.isfile(path):
        raise WeightsError("VGG-19 weights path %s is not a file; %s." % (path, HOW_TO_GET))
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
    except OSError as error:
        raise WeightsError("VGG-19 weights file %s cannot be read (%s); %s."
                           % (path, error.strerror or error, HOW_TO_GET))
    if not head:
        raise WeightsError("VGG-19 weights file %s is empty (0 bytes; an interrupted download?); %s."
                           % (path, HOW_TO_GET))
    if head != HDF5_SIGNATURE:
        raise WeightsError("VGG-19 weights file %s is not an HDF5 file (wrong or damaged file); %s."
                           % (path, HOW_TO_GET))


def _load_into_keras(path):
    """Build Keras' VGG-19 (no top, no weights) and fill it with Keras' legacy-h5 loader."""
    import keras

    model = keras.applications.VGG19(weights=None, include_top=False)
    if path.lower().endswith((".h5", ".hdf5")):
        model.load_weights(path)
    else:
        # load_weights dispatches on the file name; the loader it would call is this one.
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            legacy_h5_format.load_weights_from_hdf5_group(group, model)
    return model


def load_vgg19_weights(path=None):
    """{keras conv layer name: (kernel (3,3,in,out) float32, bias (out,) float32)} in network order."""
    path = find_weights(path)
    check_weights_file(path)
    try:
        model = _load_into_keras(path)
    except WeightsError:
        raise
    except Exception as error:  # h5py/Keras raise OSError, ValueError, KeyError... for bad files
        log.info("loading weights from %s failed: %r", path, error)
        detail = " ".join(str(error).split())[:200].rstrip(".").replace(". ", ": ") or type(error).__name__
        kind = "truncated or damaged" if isinstance(error, OSError) else "not the Keras VGG-19 notop weights file"
        raise WeightsError("VGG-19 weights file %s is %s (%s); %s." % (path, kind, detail, HOW_TO_GET))
    weights = {}
    for layer in model.layers:
        if "_conv" in layer.name:
            kernel, bias = layer.get_weights()
            weights[layer.name] = (np.asarray(kernel, np.float32), np.asarray(bias, np.float32))
    if len(weights) != 16:
        raise WeightsError("VGG-19 weights file %s holds %d convolution layers, expected 16; %s."
                           % (path, len(weights), HOW_TO_GET))
    log.info("loaded VGG-19 weights from %s", path)
    return weights
