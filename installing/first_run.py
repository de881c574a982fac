"""--first-run: stylize the bundled samples (samples/photo.jpg in the style of samples/painting.jpg)
with the installed engine, the way engine.json says to run it: the artist's first result, and proof
that the engine, its Python and the weights work together."""

import os
import subprocess

from installing.engine_config import read_engine_config
from installing.output import InstallError
from installing.project import HERE, paths

SAMPLES = os.path.join(HERE, "samples")


def first_run(output, size=256, iterations=100):
    """Run the engine's stylize on the samples into `output`; returns 0 or the engine's exit code."""
    config = read_engine_config()
    if config is None:
        raise InstallError("nothing is installed yet (no %s): run python3 installer.py first"
                           % paths.engine_config_path())
    output = os.path.abspath(os.path.expanduser(output))
    command = config["command"] + ["stylize", os.path.join(SAMPLES, "photo.jpg"), os.path.join(SAMPLES, "painting.jpg"),
                                   "-o", output, "--size", str(size), "--iterations", str(iterations)]
    if config.get("weights"):
        command += ["--weights", config["weights"]]
    print("Stylizing the bundled photo (samples/photo.jpg) in the style of the bundled painting "
          "(samples/painting.jpg), %d px, %d iterations:\n  %s" % (size, iterations, " ".join(command)), flush=True)
    try:
        code = subprocess.call(command, cwd=os.path.dirname(output))
    except OSError as error:
        raise InstallError("could not run the engine's Python %s (%s): run python3 installer.py to repair it"
                           % (command[0], error.strerror or error))
    if code == 0 and os.path.exists(output):
        print("\nYour first result: %s\nNow open GIMP or Krita: Filters > Neural Style." % output)
        return 0
    print("\nThe engine could not stylize the samples (its message is above); "
          "python3 installer.py --check shows what to repair.")
    return code or 1
