"""The Gatys losses in two normalizations, and the objective built from them.

F, P: post-ReLU features of one layer (N_l channels, M_l positions); G = FᵀF, A the style's Gram
rescaled to the output's M_l (see `rescale_gram`); x the pixels 0..255.

"seed" (the seed lecture's raw formulas):
- content  L_c = ½ Σ (F − P)²
- style    E_l = Σ (G_l − A_l)² / (4 N_l² M_l²)
- TV       L_tv = ½ Σ (x[i+1,j] − x[i,j])² + (x[i,j+1] − x[i,j])²
"size" (the default: every term per position, so the balance does not change with the size; with
the default weights this is jcjohnson/neural-style's default objective, see docs/engine.md):
- content  L_c = Σ (F − P)² / (N M)                  mean over the C·H·W feature values
- style    E_l = Σ (G_l − A_l)² / (N_l⁴ M_l²)         mean over the N² entries of (G − A)/(N M)
- TV       L_tv = ½ Σ (...)² × 512² / (H W)          jcjohnson's TV sum, per position of a 512² image
total = α L_c + β Σ_l w_l E_l + tv_weight L_tv. With "seed" the coarse scales of a job multiply the
content and TV terms by (final positions / this scale's positions), so that every scale balances
its terms as the final picture does (`Objective(final_size=...)`).
"""

import numpy as np
import tensorflow as tf

from .model import layer_names

NORMALIZATIONS = ("size", "seed")
REFERENCE_POSITIONS = 512 * 512     # "size" TV: jcjohnson's TV sum of a 512x512 picture, per position


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
    """The lecture's ½ Σ (F − P)²."""
    return 0.5 * tf.reduce_sum(tf.square(features - target))


def style_layer_loss(features, target_gram):
    """The lecture's E_l for one layer, against a target Gram already rescaled to this layer's M_l."""
    n = tf.cast(tf.shape(features)[-1], tf.float32)
    m = tf.cast(positions(features), tf.float32)
    return tf.reduce_sum(tf.square((gram(features) - target_gram) / (2.0 * n * m)))


def tv_loss(image):
    """½ Σ of squared neighbour differences of a (1, H, W, 3) image (the lecture's TV)."""
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


def check_normalization(name):
    if name not in NORMALIZATIONS:
        from .errors import InputError
        raise InputError("loss_normalization must be one of %s, got %r" % (", ".join(NORMALIZATIONS), name),
                         field="options.loss_normalization")
    return name


class Coefficients:
    """The numbers that turn sums into one normalization's terms at one size, and weight them.

    content term = content_scale · Σ(F − P)²; E_l = Σ((G − A) · style_scales[l])²;
    TV term = tv_scale · ½Σ(...)²; total = content_weight · content + Σ style_weights[l] · E_l +
    tv_weight · TV (the weights include α, β·w_l, tv_weight and a `seed` coarse scale's balance)."""

    def __init__(self, objective, size):
        size = (int(size[0]), int(size[1]))
        final = objective.final_size or size
        seed = objective.normalization == "seed"
        m_content = feature_positions(size, objective.content_layer)
        n_content = objective.content_channels or 1
        self.content_scale = 0.5 if seed else 1.0 / (n_content * m_content)
        self.style_scales = []
        for name, n in zip(objective.style_layers, objective.style_channels):
            m = feature_positions(size, name)
            self.style_scales.append(1.0 / (2.0 * n * m) if seed else 1.0 / (float(n) * n * m))
        pixels = size[0] * size[1]
        self.tv_scale = 1.0 if seed else REFERENCE_POSITIONS / float(pixels)
        content_balance = feature_positions(final, objective.content_layer) / float(m_content) if seed else 1.0
        tv_balance = final[0] * final[1] / float(pixels) if seed else 1.0
        self.content_weight = objective.alpha * content_balance
        self.style_weights = [objective.beta * w for w in objective.layer_weights]
        self.tv_weight = objective.tv_weight * tv_balance

    def parts(self, style_layers, content, per_layer, tv):
        """The parts map (unweighted terms, the weighted ones, total = their sum)."""
        per_layer = [float(e) for e in per_layer]
        weighted_style = [w * e for w, e in zip(self.style_weights, per_layer)]
        weighted = {"content": self.content_weight * float(content),
                    "style": dict(zip(style_layers, weighted_style)), "tv": self.tv_weight * float(tv)}
        total = weighted["content"] + sum(weighted_style) + weighted["tv"]
        return {"content_loss": float(content), "style_loss": None, "tv_loss": float(tv), "total_loss": total,
                "style_layers": dict(zip(style_layers, per_layer)), "weighted": weighted}


def _traced(model, content_layer, style_layers, pooling, precision):
    """One traced value-and-gradient function per (layers, pooling, precision) of a model, for any
    image size; targets and coefficients are arguments, so a job never retraces."""
    key = (content_layer, style_layers, pooling, precision)
    functions = model.__dict__.setdefault("objective_functions", {})
    if key in functions:
        return functions[key]
    layers = tuple(dict.fromkeys(((content_layer,) if content_layer else ()) + style_layers))
    count = len(style_layers)

    def value_and_grad(image, content_target, style_targets, content_scale, style_scales, content_weight,
                       style_weights, tv_scale, tv_weight):
        model.traces = getattr(model, "traces", 0) + 1        # runs only while tracing
        with tf.GradientTape() as tape:
            tape.watch(image)
            features = dict(zip(layers, model.forward(image, layers, pooling, precision)))
            if content_layer:
                content = content_scale * tf.reduce_sum(tf.square(features[content_layer] - content_target))
            else:
                content = tf.constant(0.0)
            per_layer = tf.stack([tf.reduce_sum(tf.square((gram(features[name]) - target) * style_scales[i]))
                                  for i, (name, target) in enumerate(zip(style_layers, style_targets))])
            tv = tv_scale * tv_loss(image)
            total = content_weight * content + tf.reduce_sum(style_weights * per_layer) + tv_weight * tv
        return tape.gradient(total, image), content, per_layer, tv

    scalar = tf.TensorSpec([], tf.float32)
    functions[key] = tf.function(value_and_grad, input_signature=[
        tf.TensorSpec([1, None, None, 3], tf.float32), tf.TensorSpec([1, None, None, None], tf.float32),
        [tf.TensorSpec([None, None], tf.float32)] * count, scalar, tf.TensorSpec([count], tf.float32), scalar,
        tf.TensorSpec([count], tf.float32), scalar, scalar])
    return functions[key]


class Objective:
    """Total loss and its gradient with respect to the pixels, for fixed targets.

    content_target: features of the content layer (or None when α = 0);
    style_targets: {keras layer name: Gram already rescaled to the output's size, blended};
    final_size: the job's final (height, width) when this is a coarser scale (balance, "seed" only);
    precision: what the convolutions compute in (the model's by default).
    Each call of `evaluate` is one forward+backward pass (counted in model.passes).
    """

    def __init__(self, model, options, content_target, style_targets, final_size=None, precision=None):
        self.model = model
        self.precision = precision or model.precision
        self.content_layer = layer_names([options["content_layer"]])[0]
        self.style_layers = layer_names(options["style_layers"])
        self.layer_weights = tuple(float(w) for w in options["style_layer_weights"])
        self.alpha = float(options["content_weight"])
        self.beta = float(options["style_weight"])
        self.tv_weight = float(options["tv_weight"])
        self.pooling = options["pooling"]
        self.normalization = check_normalization(options.get("loss_normalization", "size"))
        self.final_size = tuple(int(s) for s in final_size) if final_size is not None else None
        self.content_target = tf.constant(content_target) if content_target is not None else None
        self.style_targets = [tf.constant(style_targets[name]) for name in self.style_layers]
        self.content_channels = int(content_target.shape[-1]) if content_target is not None else None
        self.style_channels = [int(t.shape[-1]) for t in self.style_targets]
        self._function = _traced(model, self.content_layer if content_target is not None else None,
                                 self.style_layers, self.pooling, self.precision)
        self._no_content = tf.zeros([1, 1, 1, 1], tf.float32)

    def coefficients(self, size):
        return Coefficients(self, size)

    def evaluate(self, image):
        """image (H, W, 3) float32 0..255 -> (total, gradient (H, W, 3) float32, parts dict)."""
        c = self.coefficients(image.shape[:2])
        with tf.device(self.model.device):
            grad, content, per_layer, tv = self._function(
                tf.convert_to_tensor(image[np.newaxis], tf.float32),
                self.content_target if self.content_target is not None else self._no_content,
                self.style_targets, np.float32(c.content_scale), np.asarray(c.style_scales, np.float32),
                np.float32(c.content_weight), np.asarray(c.style_weights, np.float32), np.float32(c.tv_scale),
                np.float32(c.tv_weight))
        self.model.passes += 1
        parts = self.parts(c, float(content), per_layer.numpy(), float(tv))
        return parts["total_loss"], grad.numpy()[0], parts

    def parts(self, coefficients, content, per_layer, tv):
        parts = coefficients.parts(self.style_layers, content, per_layer, tv)
        parts["style_loss"] = sum(w * e for w, e in zip(self.layer_weights, parts["style_layers"].values()))
        return parts
