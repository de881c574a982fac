"""Runs one validated submit through the engine core: pixels in, progress with previews, pixels out."""

import logging
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from shared import protocol as p
from shared.options import validate_options

from . import pixels
from .library_handlers import require_library
from ..core.errors import Cancelled, InputError

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25      # progress headers (without a preview) at most this often
WARM_UP_SIZE = (120, 160)       # a preview's working size (a 4:3 layer at max_size 160)


class StylizeRunner:
    """`runner(job, emit)`; `library` is a StyleLibrary or None (library styles then get "unsupported").
    A style file is loaded under `max_pixels` (the engine's limit per image) again, checked in its
    header before it is decoded: the file may have been replaced since the submit was accepted."""

    def __init__(self, model: Any, library: Any = None, stylize: Optional[Callable] = None,
                 max_pixels: Optional[int] = None):
        if stylize is None:
            from ..core.stylize import stylize
        from ..core.images import MAX_PIXELS
        self.model = model
        self.library = library
        self.stylize = stylize
        self.max_pixels = MAX_PIXELS if max_pixels is None else max_pixels

    def style_inputs(self, styles: List[p.StyleRef]) -> list:
        from ..core.stylize import StyleInput
        inputs = []
        for index, style in enumerate(styles):
            field = "styles[%d]" % index
            if style.kind == "file":
                try:
                    from ..core.images import load_rgb
                    image = load_rgb(style.path, "style", self.max_pixels)
                except InputError as error:
                    error.field = field + ".path"
                    raise
                inputs.append(StyleInput(image, style.weight))
            elif style.kind == "pixels":
                rgb, _ = pixels.decode(style.image)
                inputs.append(StyleInput(rgb, style.weight))
            else:
                try:
                    image = require_library(self.library, field).image(style.style_id)
                except Exception as error:
                    if getattr(error, "code", None):
                        error.field = field + ".id"
                    raise
                inputs.append(StyleInput(image, style.weight, key=style.style_id))
        return inputs

    def warm_up(self, should_stop: Callable[[], bool]) -> None:
        """One iteration of a preview-sized job with the default options, before the first job: it
        traces the passes and lets TensorFlow set up its kernels, which a fresh engine's first preview
        would otherwise wait for. Stops at the next pass once `should_stop()` (a job or a client came)."""
        from ..core.stylize import StyleInput
        from ..core.tiling import cancel_check
        height, width = WARM_UP_SIZE
        rng = np.random.default_rng(16)
        content = np.add.outer(np.linspace(0, 200, height), np.linspace(0, 50, width))[..., None] + [0, 30, 60]
        style = rng.uniform(0.0, 255.0, (128, 128, 3))
        started = time.monotonic()
        try:
            with cancel_check(should_stop):
                self.stylize(self.model, content.astype(np.float32), [StyleInput(style.astype(np.float32))],
                             validate_options({"iterations": 1, "max_size": width}), should_cancel=should_stop)
        except Cancelled:
            log.info("warm-up stopped after %.2f s: a job or a client came", time.monotonic() - started)
            return
        log.info("warm-up done in %.2f s", time.monotonic() - started)

    def __call__(self, job: Any, emit: Callable) -> None:
        request = job.request
        options: Dict[str, Any] = dict(request.options)
        preview_interval = options.pop("preview_interval_s")
        feather = options.pop("feather")
        rgb, alpha = pixels.decode(request.image)
        mask = pixels.soft_mask(request.mask, feather) if request.mask is not None else None
        styles = self.style_inputs(request.styles)
        uses_library = any(style.key for style in styles)
        started = time.monotonic()
        # The first preview comes with the first iteration (the artist sees the job start), then one
        # every preview_interval_s.
        last = {"header": float("-inf"), "preview": float("-inf")}

        def on_progress(progress: Any) -> None:
            now = time.monotonic()
            preview_due = preview_interval > 0 and now - last["preview"] >= preview_interval
            final = progress.iteration >= progress.iterations
            if not (preview_due or final or now - last["header"] >= PROGRESS_INTERVAL_S):
                return
            last["header"] = now
            fields = progress.fields()
            frames = []
            if preview_due:
                preview = pixels.encode(progress.image(), alpha, request.image, mask)
                fields["preview"] = preview.descriptor(1)
                frames.append(preview.data)
                last["preview"] = time.monotonic()
            job.progress = fields
            emit(job, p.message(p.PROGRESS, job=job.id, **fields), frames)

        from ..core.tiling import cancel_check
        should_cancel = getattr(job, "should_cancel", job.cancel_event.is_set)
        init, extra = None, None
        if request.previous_frame is not None:
            rgb, init, extra, options = frame_start(request.previous_frame, rgb, options)
        with cancel_check(should_cancel):
            result = self.stylize(self.model, rgb, styles, options, on_progress=on_progress,
                                  should_cancel=should_cancel,
                                  gram_cache=self.library.gram_cache if uses_library else None,
                                  init_image=init, extra_loss=extra)
        out = pixels.encode(result, alpha, request.image, mask)
        emit(job, p.message(p.RESULT, job=job.id, image=out.descriptor(1), elapsed_s=time.monotonic() - started,
                            work_width=int(result.shape[1]), work_height=int(result.shape[0])), [out.data])


def frame_start(previous_frame, rgb, options):
    """Frame k > 0 of a sequence, as `batch --frames` runs it (core/temporal.py): the three images at the
    working size -> (content, start image, temporal term or None, options)."""
    from ..core.images import fit_size, resize
    from ..core.temporal import FRAME_RUN, follow

    size = tuple(rgb.shape[:2])
    if max(size) > options["max_size"]:
        size = fit_size(size, options["max_size"])

    def sized(image):
        return image if image.shape[:2] == size else resize(image, size).clip(0.0, 255.0)

    previous_content, previous_result = (sized(pixels.decode(frame)[0]) for frame in previous_frame)
    content = sized(rgb)
    init, extra, _ = follow(previous_content, content, previous_result, options["temporal_weight"], options)
    return content, init, extra, {**options, **FRAME_RUN}
