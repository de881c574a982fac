"""VGG-19's convolutional part as frozen constants with a truncated forward pass.

Built once per process from the Keras notop weights. The forward pass takes RGB images in 0..255,
applies Keras' "caffe" preprocessing for these weights (RGB -> BGR, ImageNet mean subtracted) and
returns the post-ReLU outputs of the requested layers, stopping after the deepest one.
"""

import logging

import numpy as np
import tensorflow as tf

from shared.options import keras_layer_name, lecture_layer_name

from .errors import InputError
from .weights import load_vgg19_weights

log = logging.getLogger(__name__)

# Keras' vgg19.preprocess_input (mode "caffe"): BGR means of ImageNet, on 0..255 pixels.
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
CONV_LAYERS = tuple("block%d_conv%d" % (block, conv)
                    for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
                    for conv in range(1, convs + 1))


def preprocess(rgb):
    """RGB 0..255 (..., 3) -> Keras caffe input: BGR, ImageNet mean subtracted."""
    return rgb[..., ::-1] - tf.constant(IMAGENET_MEAN_BGR, dtype=rgb.dtype)


def layer_names(names):
    """Map lecture or Keras names to Keras names; raises InputError naming the bad one."""
    result = []
    for name in names:
        try:
            result.append(keras_layer_name(name))
        except ValueError as error:
            raise InputError(str(error), field="layer")
    return tuple(result)


def pools_before(layer):
    """How many 2x2 poolings lie before `layer` (block N has N-1)."""
    return int(keras_layer_name(layer)[5]) - 1


def pixels_per_position(layer):
    """The side in pixels of one position of `layer`'s feature map (its pooling grid)."""
    return 2 ** pools_before(layer)


def min_side(layers):
    """The smallest image side that leaves every one of `layers` at least one position."""
    return max(pixels_per_position(name) for name in layers)


def pick_device():
    return "/GPU:0" if tf.config.list_physical_devices("GPU") else "/CPU:0"


PRECISIONS = ("auto", "float32", "bfloat16")


def _cpu_has_bfloat16():
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_precision(device):
    """"bfloat16" where the hardware computes it natively (a GPU of compute capability 8.0 or newer,
    a CPU with AVX512-BF16 or AMX), else "float32". bfloat16 keeps float32's exponent range, so the
    tiny style gradients do not underflow as they would in float16 without loss scaling."""
    if device.upper().startswith("/GPU"):
        try:
            gpu = tf.config.list_physical_devices("GPU")[0]
            capability = tf.config.experimental.get_device_details(gpu).get("compute_capability") or (0, 0)
        except Exception:
            return "float32"
        return "bfloat16" if tuple(capability) >= (8, 0) else "float32"
    return "bfloat16" if _cpu_has_bfloat16() else "float32"


class VGG19Features:
    """Frozen VGG-19 features. `passes` counts forward passes (each objective evaluation counts one).

    `precision` is what the convolutions compute in: "float32", "bfloat16" (mixed precision: the
    features are handed out as float32, so Grams, losses and the optimizer stay float32), or "auto"
    (`pick_precision`)."""

    def __init__(self, weights, device=None, precision="float32"):
        self.device = device or pick_device()
        if precision not in PRECISIONS:
            raise InputError("precision must be one of %s, got %r" % (", ".join(PRECISIONS), precision),
                             field="precision")
        self.precision = pick_precision(self.device) if precision == "auto" else precision
        self.passes = 0
        kernels = {name: weights[name][0] for name in CONV_LAYERS}
        # The RGB -> BGR swap of the preprocessing is folded into the first kernel's input channels:
        # the same numbers, without a reversed copy of the image (and its gradient) in every pass.
        kernels[CONV_LAYERS[0]] = np.ascontiguousarray(kernels[CONV_LAYERS[0]][:, :, ::-1, :])
        arrays = [(name, kernels[name], weights[name][1]) for name in CONV_LAYERS]
        self._constants = {}
        # A bfloat16 model keeps the float32 weights (host memory, 80 MB for VGG-19) for a job that
        # goes on in float32 (stylize: after a failed line search), so it never reads the file again.
        self._float32_weights = None if self.precision == "float32" else arrays
        self._layers = self._build(arrays, self.precision)
        self._feature_functions = {}

    def _build(self, arrays, precision):
        with tf.init_scope(), tf.device(self.device):      # eager constants, also when first asked while tracing
            self._constants[precision] = [(name, tf.constant(kernel, dtype=precision), tf.constant(bias, dtype=precision))
                                          for name, kernel, bias in arrays]
        return self._constants[precision]

    def can_compute_in(self, precision):
        return precision in self._constants or (precision == "float32" and self._float32_weights is not None)

    def _layers_in(self, precision):
        if precision not in self._constants:
            if not self.can_compute_in(precision):
                raise ValueError("this model has no %s weights" % precision)
            self._build(self._float32_weights, precision)
            self._float32_weights = None        # the constants hold them now
        return self._constants[precision]

    @classmethod
    def load(cls, weights_path=None, device=None, precision="float32"):
        """Read the weights file (WeightsError with one clear sentence when it is not usable)."""
        return cls(load_vgg19_weights(weights_path), device, precision)

    def forward(self, rgb, layers, pooling="max", precision=None):
        """Graph-buildable forward pass: rgb (B,H,W,3) float32 0..255 -> [features of `layers`]
        in the order asked, computed in `precision` (the model's by default; "float32" also when the
        model is bfloat16). Does not count a pass (callers inside tf.function count their own)."""
        precision = precision or self.precision
        wanted = layer_names(layers)
        deepest = max(CONV_LAYERS.index(name) for name in wanted)
        outputs = {}
        x = rgb - tf.constant(IMAGENET_MEAN_BGR[::-1], dtype=rgb.dtype)    # preprocess() but for the swap
        x = tf.cast(x, precision)
        for index, (name, kernel, bias) in enumerate(self._layers_in(precision)[:deepest + 1]):
            if index and name.endswith("_conv1"):
                pool = tf.nn.max_pool2d if pooling == "max" else tf.nn.avg_pool2d
                x = pool(x, ksize=2, strides=2, padding="VALID")   # as Keras' VGG19
            x = tf.nn.relu(tf.nn.bias_add(tf.nn.conv2d(x, kernel, strides=1, padding="SAME"), bias))
            outputs[name] = x
        return [tf.cast(outputs[name], tf.float32) for name in wanted]

    def features(self, rgb, layers, pooling="max", precision=None):
        """Eager helper: rgb HxWx3 (or BxHxWx3) 0..255 -> {keras layer name: float32 tensor (B,H,W,C)}."""
        wanted = layer_names(layers)
        check_size(np.shape(rgb)[-3:-1], wanted)
        precision = precision or self.precision
        key = (wanted, pooling, precision)
        if key not in self._feature_functions:
            self._feature_functions[key] = tf.function(
                lambda x: self.forward(x, wanted, pooling, precision),
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
        rgb = tf.convert_to_tensor(rgb, tf.float32)
        if rgb.shape.rank == 3:
            rgb = rgb[tf.newaxis]
        with tf.device(self.device):
            values = self._feature_functions[key](rgb)
        self.passes += 1
        return dict(zip(wanted, values))


def check_size(size, layers):
    """An image must survive the poolings before the deepest layer with at least one position."""
    need = min_side(layers)
    height, width = int(size[0]), int(size[1])
    if height < need or width < need:
        raise InputError("image of %dx%d pixels is too small for the network layer %s: each side needs at least "
                         "%d pixels" % (width, height, lecture_layer_name(max(layers, key=pools_before)), need))
