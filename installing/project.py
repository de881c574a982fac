"""What gets installed: the checkout this runs from, its version, the pinned packages, the weights'
URL and md5, the names of things; and where they go (shared/paths.py, loaded by file)."""

import importlib.util
import os
import re

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))   # the checkout (installer.py's folder)


def _load_paths():
    """shared/paths.py by file, so shared/__init__.py (and whatever it may import) is not run."""
    spec = importlib.util.spec_from_file_location("neural_style_paths", os.path.join(HERE, "shared", "paths.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paths = _load_paths()

# From Keras' own source (keras/src/applications/vgg19.py: WEIGHTS_PATH_NO_TOP and its file_hash).
WEIGHTS_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
               "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
WEIGHTS_MD5 = "253f8cb515780f3b799900260a226db6"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

TENSORFLOW_VERSION = "2.21.0"
# The versions the test suite ran with (Python 3.11). pyproject.toml holds the lower bounds;
# the installer pins exactly so every machine gets the tested set. TensorFlow is added per platform.
PINNED = ["keras==3.15.1", "numpy==2.4.6", "pillow==13.0.0", "pyzmq==27.3.0", "msgpack==1.2.4",
          "h5py==3.14.0", "opencv-python-headless==5.0.0.93"]
TEST_PINNED = ["pytest==9.0.3", "hypothesis==6.155.2"]
EDITOR_DEPS = ["pyzmq==27.3.0", "msgpack==1.2.4"]   # what the plugins' client needs inside the editor
ENGINE_PYTHON = ((3, 11), (3, 13))                  # TensorFlow 2.21 + the pins above

PLUGIN_NAME = "neural_style"
SERVICE_NAME = "neural-style-engine"
LAUNCHD_LABEL = "org.neural-style.engine"
WINDOWS_TASK = "NeuralStyleEngine"
MANIFEST_NAME = "install-manifest.json"


def project_version():
    with open(os.path.join(HERE, "pyproject.toml"), encoding="utf-8") as f:
        match = re.search(r'^version\s*=\s*"([^"]+)"', f.read(), re.MULTILINE)
    return match.group(1) if match else "unknown"


VERSION = project_version()


def paths_log():
    return os.path.join(paths.state_dir(), "installer.log")


def home(*parts):
    return os.path.join(os.path.expanduser("~"), *parts)


def xdg(variable, *fallback):
    value = os.environ.get(variable)
    return value if value and os.path.isabs(value) else home(*fallback)
