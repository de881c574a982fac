"""`python -m engine_server batch STYLE INPUT... -o OUTDIR`: many images, folders and videos, one style.

What is written (docs/frames.md): an image `a.jpg` -> OUTDIR/a.png; a folder -> one output per image
in it, by the image's own name; a video `clip.mp4` -> OUTDIR/clip_00001.png ... and OUTDIR/clip.mp4.
With `--frames` a folder, a video, or a run of image files given one after another is a shot:
frame by frame, each started from the previous result warped by the optical flow, and held to it
by a temporal term (core/temporal.py). Inputs are checked before the model loads; a bad one gets
one line naming the file and the others still run; whatever was written is kept.
"""

import os
from dataclasses import dataclass, field
from typing import List, Optional

from shared.options import TEMPORAL_WEIGHT

from ..core.errors import InputError
from ..core.video import IMAGE_EXTENSIONS, VideoReader, folder_images, is_image, is_video

FRAME_DIGITS = 5


@dataclass
class Unit:
    """One thing to stylize: a single image, a shot of frame files, or a video."""
    kind: str                      # "image" | "frames" | "video"
    source: str                    # what the user named
    paths: List[str] = field(default_factory=list)     # image files (image: one; frames: in order)
    name: str = ""                 # output stem (videos: of the frames and the video)
    count: int = 1                 # frames (a video's is the container's estimate)
    fps: Optional[float] = None

    def outputs(self, outdir):
        if self.kind == "video":
            return [os.path.join(outdir, "%s.mp4" % self.name)]
        return [output_path(outdir, path) for path in self.paths]


def output_path(outdir, path):
    return os.path.join(outdir, os.path.splitext(os.path.basename(path))[0] + ".png")


def frame_path(outdir, name, number):
    return os.path.join(outdir, "%s_%0*d.png" % (name, FRAME_DIGITS, number))


def plan(inputs, frames, report):
    """INPUTs -> [Unit]; a bad INPUT is reported (report(message)) and left out."""
    units = []
    loose = []                     # image files given one by one (a shot with --frames)

    def flush():
        if loose:
            if frames:
                units.append(Unit("frames", loose[0], list(loose), count=len(loose)))
            else:
                units.extend(Unit("image", path, [path]) for path in loose)
            del loose[:]

    for source in inputs:
        try:
            if os.path.isdir(source):
                flush()
                paths = folder_images(source)
                if frames:
                    units.append(Unit("frames", source, paths, count=len(paths)))
                else:
                    units.extend(Unit("image", path, [path]) for path in paths)
            elif not os.path.exists(source):
                raise InputError("input %s does not exist" % source)
            elif is_video(source):
                flush()
                reader = VideoReader(source)
                reader.close()
                units.append(Unit("video", source, name=os.path.splitext(os.path.basename(source))[0],
                                  count=max(1, reader.count), fps=reader.fps))
            elif is_image(source):
                loose.append(source)
            else:
                raise InputError("input %s is neither an image (%s), a video nor a folder"
                                 % (source, ", ".join(IMAGE_EXTENSIONS)))
        except InputError as error:
            report(error.message)
    flush()
    return units


def drop_collisions(units, outdir, report):
    """Two inputs writing one output, or an output over an input: refuse the later one, by name."""
    written, sources = {}, set()
    for unit in units:
        sources.update(os.path.realpath(path) for path in unit.paths + [unit.source])
    kept = []
    for unit in units:
        clash = None
        for path in unit.outputs(outdir):
            real = os.path.realpath(path)
            if real in written:
                clash = "%s and %s would both write %s; rename one" % (written[real], unit.source, path)
            elif real in sources:
                clash = "%s would overwrite the input %s; choose another -o folder" % (unit.source, path)
            if clash:
                break
        if clash:
            report(clash)
            continue
        for path in unit.outputs(outdir):
            written[os.path.realpath(path)] = unit.source
        kept.append(unit)
    return kept


def run_batch(args):
    import sys

    from .batch_run import Batch
    from .stylize import stylize_options

    options, init_path = stylize_options(args)     # --temporal-weight is checked there, by the option table
    if args.frame_iterations is not None and not 1 <= args.frame_iterations <= 10000:
        raise InputError("--frame-iterations must be between 1 and 10000, got %d" % args.frame_iterations)
    if args.engine is not None and init_path is not None:
        raise InputError("--init with an image file is not supported with --engine; run without --engine")
    if os.path.exists(args.outdir) and not os.path.isdir(args.outdir):
        raise InputError("-o %s must be a folder (it is a file)" % args.outdir)
    failures = []

    def report(message):
        failures.append(message)
        print("error: %s" % message, file=sys.stderr, flush=True)

    units = drop_collisions(plan(args.inputs, args.frames, report), args.outdir, report)
    if not units:
        raise InputError("nothing to stylize: %s" % ("every input was refused" if failures else "no inputs"))
    os.makedirs(args.outdir, exist_ok=True)
    return Batch(args, options, init_path, units, report).run() or (2 if failures else 0)


def register(subparsers):
    from .stylize import add_stylize_flags

    batch = subparsers.add_parser(
        "batch", help="stylize many images, folders of frames or videos with one style",
        description="Stylize every INPUT (image files, folders of images, video files) with STYLE, one output "
                    "per input in OUTDIR: a.jpg -> OUTDIR/a.png, a folder's images by their own names, a video "
                    "clip.mp4 -> OUTDIR/clip_00001.png ... and OUTDIR/clip.mp4. The style's targets are "
                    "computed once for the whole batch. --frames keeps a sequence coherent in time.")
    batch.add_argument("style", metavar="STYLE", help="an image file, or lib:NAME (a library style by id or name)")
    batch.add_argument("inputs", metavar="INPUT", nargs="+", help="image files, folders of images, video files")
    batch.add_argument("-o", "--output", dest="outdir", required=True, metavar="OUTDIR",
                       help="folder for the results (made if missing)")
    batch.add_argument("--frames", action="store_true",
                       help="treat each folder, video, or run of image files as the frames of one shot: each frame "
                            "starts from the previous result, warped by the optical flow, and a temporal loss keeps "
                            "it there where the motion is trusted (Ruder et al. 2016)")
    batch.add_argument("--temporal-weight", default=None, metavar="X",
                       help="weight of the temporal loss, the mean of c (x - warped)^2 over the 0..255 pixel values "
                            "(--loss-normalization seed: docs/frames.md), the same at every size "
                            "(default: %g; 0: warped start only)" % TEMPORAL_WEIGHT)
    batch.add_argument("--frame-iterations", type=int, default=None, metavar="N",
                       help="iterations for each frame after a shot's first (default: --iterations); later "
                            "frames start near a result, so fewer usually do (docs/frames.md)")
    add_stylize_flags(batch)
    batch.set_defaults(func=run_batch, styles=None)
