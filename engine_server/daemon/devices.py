"""The engine's device: its name for the welcome, and how TensorFlow may use a GPU's memory."""

import logging
from typing import Any, Optional

log = logging.getLogger("engine_server")


def device_name(model: Any) -> str:
    """"CPU", or the GPU's name as TensorFlow reports it."""
    device = getattr(model, "device", "/CPU:0")
    if "GPU" not in device.upper():
        return "CPU"
    try:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        return tf.config.experimental.get_device_details(gpus[0]).get("device_name") or "GPU 0"
    except Exception:
        return device


def configure_gpus(memory_limit_mib: Optional[int] = None) -> list:
    """Before TensorFlow first touches a GPU: take GPU memory as it is needed (memory growth), or at
    most `memory_limit_mib` per GPU, never all of it at start (the editor's canvas shares the GPU).
    Returns what was set, per GPU."""
    import tensorflow as tf
    done = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            if memory_limit_mib:
                tf.config.set_logical_device_configuration(
                    gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=int(memory_limit_mib))])
                done.append((gpu.name, "limit", int(memory_limit_mib)))
            else:
                tf.config.experimental.set_memory_growth(gpu, True)
                done.append((gpu.name, "growth", True))
        except (RuntimeError, ValueError) as error:     # already initialized: too late to change
            log.warning("GPU %s: memory settings not applied (%s)", gpu.name, error)
    return done
