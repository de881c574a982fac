"""The Gatys losses, exactly as the seed lecture writes them, and the objective built from them.

- content  L_c = 1/2 Σ (F - P)²                        F, P: post-ReLU features of one layer
- style    E_l = 1/(4 N_l² M_l²) Σ (G_l - A_l)²        G = Fᵀ F (N_l x N_l), M_l positions
           L_s = Σ_l w_l E_l
- TV       L_tv = 1/2 Σ (x[i+1,j] - x[i,j])² + (x[i,j+1] - x[i,j])²   (pixels 0..255)
- total    α L_c + β L_s + tv_weight L_tv

A Gram matrix is a sum over positions, so a style image with M_s positions gives a target about
M_s/M times the size the output's Gram can reach. `rescale_gram` multiplies the style Gram by
M/M_s (its per-position average times the output's positions) so like is compared with like.
"""

import numpy as np
import tensorflow as tf

from .model import layer_names


def gram(features):
    """(1, H, W, N) or (H, W, N) -> (N, N) Gram matrix Σ_positions f fᵀ."""
    channels = tf.shape(features)[-1]
    return _gram_of_rows(tf.reshape(features, [-1, channels]))


@tf.custom_gradient
def _gram_of_rows(flat):
    """FᵀF with a gradient of one matmul, F (dG + dGᵀ), where TensorFlow's own would take two."""
    def gradient(upstream):
        return tf.matmul(flat, upstream + tf.transpose(upstream))
    return tf.matmul(flat, flat, transpose_a=True), gradient


def positions(features):
    """M_l: the number of spatial positions of a feature map."""
    shape = tf.shape(features)
    return tf.reduce_prod(shape[:-1])


def content_loss(features, target):
    return 0.5 * tf.reduce_sum(tf.square(features - target))


def style_layer_loss(features, target_gram):
    """E_l for one layer, against a target Gram already rescaled to this layer's M_l."""
    n = tf.cast(tf.shape(features)[-1], tf.float32)
    m = tf.cast(positions(features), tf.float32)
    # Divide before squaring: the same value, but far from float32's limits on big images.
    return tf.reduce_sum(tf.square((gram(features) - target_gram) / (2.0 * n * m)))


def tv_loss(image):
    """Total variation of a (1, H, W, 3) image."""
    dy = image[:, 1:, :, :] - image[:, :-1, :, :]
    dx = image[:, :, 1:, :] - image[:, :, :-1, :]
    return 0.5 * (tf.reduce_sum(tf.square(dy)) + tf.reduce_sum(tf.square(dx)))


def rescale_gram(style_gram, style_positions, output_positions):
    """Make a Gram taken over `style_positions` comparable with one over `output_positions`."""
    return style_gram * np.float32(output_positions / float(style_positions))


def feature_positions(size, layer):
    """M_l of `layer` for an image of `size` (height, width): halved (floored) once per pooling."""
    pools = int(layer_names([layer])[0][5]) - 1
    height, width = int(size[0]), int(size[1])
    for _ in range(pools):
        height, width = height // 2, width // 2
    return height * width


class Objective:
    """Total loss and its gradient with respect to the pixels, for fixed targets.

    content_target: features of the content layer (or None when α = 0);
    style_targets: {keras layer name: Gram already rescaled to the output's size, blended}.
    Each call of `evaluate` is one forward+backward pass (counted in model.passes).
    """

    def __init__(self, model, options, content_target, style_targets):
        self.model = model
        self.content_layer = layer_names([options["content_layer"]])[0]
        self.style_layers = layer_names(options["style_layers"])
        self.layer_weights = tuple(float(w) for w in options["style_layer_weights"])
        self.alpha = float(options["content_weight"])
        self.beta = float(options["style_weight"])
        self.tv_weight = float(options["tv_weight"])
        self.pooling = options["pooling"]
        self.content_target = tf.constant(content_target) if content_target is not None else None
        self.style_targets = [tf.constant(style_targets[name]) for name in self.style_layers]
        self._layers = tuple(dict.fromkeys((self.content_layer,) + self.style_layers))
        self._function = tf.function(self._value_and_grad)

    def _parts(self, image):
        features = dict(zip(self._layers, self.model.forward(image, self._layers, self.pooling)))
        content = (content_loss(features[self.content_layer], self.content_target)
                   if self.content_target is not None else tf.constant(0.0))
        per_layer = [style_layer_loss(features[name], target)
                     for name, target in zip(self.style_layers, self.style_targets)]
        style = tf.add_n([w * e for w, e in zip(self.layer_weights, per_layer)])
        tv = tv_loss(image)
        total = self.alpha * content + self.beta * style + self.tv_weight * tv
        return total, content, style, tv, tf.stack(per_layer)

    def _value_and_grad(self, image):
        with tf.GradientTape() as tape:
            tape.watch(image)
            total, content, style, tv, per_layer = self._parts(image)
        return total, tape.gradient(total, image), content, style, tv, per_layer

    def evaluate(self, image):
        """image (H, W, 3) float32 0..255 -> (total, gradient (H, W, 3) float32, parts dict)."""
        with tf.device(self.model.device):
            total, grad, content, style, tv, per_layer = self._function(
                tf.convert_to_tensor(image[np.newaxis], tf.float32))
        self.model.passes += 1
        parts = {"content_loss": float(content), "style_loss": float(style), "tv_loss": float(tv),
                 "total_loss": float(total),
                 "style_layers": dict(zip(self.style_layers, per_layer.numpy().tolist()))}
        return float(total), grad.numpy()[0], parts
