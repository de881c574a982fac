"""A VGG-19 "notop" weights file in exactly the Keras h5 layout, filled with seeded random weights.

The layout is the one of Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, as read by
`keras/src/legacy/saving/legacy_h5_format.py`:

- root attr `layer_names`: every layer in order, pooling layers included;
- one group per layer; its attr `weight_names` is empty for pooling layers and
  [b"blockN_convM_W_1:0", b"blockN_convM_b_1:0"] for convolutions, naming the datasets
  kernel (3, 3, in, out) float32 and bias (out,) float32.

The weights are He-scaled (std = sqrt(2 / fan_in)) so the activations keep their magnitude through
the 16 ReLU layers instead of vanishing or exploding. Tests never download the real file.

Manual use: python -m tests.support.fake_vgg19 OUT.h5 [--seed N]
"""

import argparse
import sys

import h5py
import numpy as np

# (block, convolutions, filters) of VGG-19's convolutional part.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))


def layer_plan():
    """[(layer name, in channels, out channels)]; pooling layers have None channels."""
    plan, channels = [], 3
    for block, convs, filters in BLOCKS:
        for conv in range(1, convs + 1):
            plan.append(("block%d_conv%d" % (block, conv), channels, filters))
            channels = filters
        plan.append(("block%d_pool" % block, None, None))
    return plan


def write_fake_vgg19_weights(path, seed=0):
    """Write the file at `path` and return `path`."""
    rng = np.random.default_rng(seed)
    plan = layer_plan()
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([name.encode("utf8") for name, _, _ in plan])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        for name, cin, cout in plan:
            group = f.create_group(name)
            if cin is None:
                group.attrs["weight_names"] = np.array([], dtype="S1")
                continue
            kernel_name, bias_name = name + "_W_1:0", name + "_b_1:0"
            group.attrs["weight_names"] = np.array([kernel_name.encode("utf8"), bias_name.encode("utf8")])
            std = np.sqrt(2.0 / (9 * cin))
            group.create_dataset(kernel_name, data=(rng.standard_normal((3, 3, cin, cout)) * std).astype(np.float32))
            group.create_dataset(bias_name, data=(rng.standard_normal(cout) * 0.1).astype(np.float32))
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="path of the .h5 file to write")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_fake_vgg19_weights(args.out, args.seed)
    print(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
