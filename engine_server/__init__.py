"""The Neural Style engine: frozen VGG-19, Gatys losses, optimizer, CLI, daemon and style library."""

import os

# numpy's BLAS starts a worker thread per core when numpy is imported, and after every call that
# thread spins, waiting for more work. The engine's numpy work is small vectors (TensorFlow has its own
# threads), so the spinning only takes CPU from TensorFlow and from the editor: a 256 px job spent 4.3 s
# of CPU in it in 8.0 s, and ran 1.39x faster without it (docs/benchmarks.md, "numpy's BLAS threads").
# Set here, before anything of the engine imports numpy; a value the user set is kept.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

__version__ = "0.1.0"
