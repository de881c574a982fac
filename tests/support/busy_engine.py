"""Keep an engine busy from another process for a while (the control for the Krita hitch test:
the same engine work, with the plugin idle).

python -m tests.support.busy_engine ENDPOINT STYLE_IMAGE SECONDS WIDTH HEIGHT MAX_SIZE
Submits one long job, reads its events for SECONDS, then cancels it and says goodbye.
"""

import sys
import time

from shared.client import Client
from shared.protocol import Pixels, StyleRef


def main(endpoint, style, seconds, width, height, max_size):
    image = Pixels(width, height, 4, "u8", bytes((x * 7 + y * 3) % 256 for y in range(height)
                                                  for x in range(width) for _ in range(4)))
    client = Client(endpoint=endpoint, autostart=False)
    try:
        job = client.submit(image=image, styles=[StyleRef.file(style)],
                            options={"iterations": 10000, "max_size": max_size, "preview_interval_s": 0.1})
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            event = job.poll(0.1)
            if event is not None and event.is_final:
                break
        job.cancel()
        job.wait(10)
    finally:
        client.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[0], args[1], float(args[2]), int(args[3]), int(args[4]), int(args[5]))
