"""Frames in and out: a folder of images in name order, or a video file (read and written with
OpenCV's FFmpeg). Frames are float32 HxWx3 RGB 0..255, as everywhere in the core."""

import os

import numpy as np

from .errors import InputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".gif")
VIDEO_CODEC = "mp4v"          # MPEG-4 Part 2: what OpenCV's own FFmpeg writes on every platform
DEFAULT_FPS = 24.0


def is_video(path):
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def is_image(path):
    return os.path.splitext(path)[1].lower() in IMAGE_EXTENSIONS


def folder_images(folder):
    """The image files of a folder, in name order (numbers compared as numbers: 2 before 10)."""
    import re

    def key(name):
        return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]

    names = sorted((n for n in os.listdir(folder) if is_image(n) and not n.startswith(".")), key=key)
    if not names:
        raise InputError("folder %s has no images (%s)" % (folder, ", ".join(IMAGE_EXTENSIONS)))
    return [os.path.join(folder, name) for name in names]


def _cv2():
    try:
        import cv2
    except ImportError:
        raise InputError("videos need OpenCV (pip install opencv-python-headless; the installer adds it)")
    return cv2


class VideoReader:
    """Frames of a video file, one at a time; `fps` and `count` (an estimate from the container)."""

    def __init__(self, path):
        if not os.path.isfile(path):
            raise InputError("video file %s does not exist" % path)
        cv2 = _cv2()
        self.path = path
        self._capture = cv2.VideoCapture(path)
        self.fps = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0) if self._capture.isOpened() else 0.0
        self.count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if self._capture.isOpened() else 0
        if not self._capture.isOpened():
            raise InputError("video file %s cannot be read (not a video, or a codec FFmpeg does not have)" % path)
        if not 0 < self.fps < 1000:
            self.fps = DEFAULT_FPS

    def close(self):
        self._capture.release()

    def __iter__(self):
        cv2 = _cv2()
        read = 0
        try:
            while True:
                ok, frame = self._capture.read()
                if not ok:
                    break
                read += 1
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB).astype(np.float32)
        finally:
            self._capture.release()
        if read == 0:
            raise InputError("video file %s has no frames that can be decoded" % self.path)


class VideoWriter:
    """Writes RGB 0..255 frames into a video file (MPEG-4, `fps` frames per second)."""

    def __init__(self, path, fps, size):
        cv2 = _cv2()
        self.path = path
        self.size = tuple(size)          # (height, width)
        self._writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*VIDEO_CODEC), float(fps),
                                       (int(size[1]), int(size[0])))
        if not self._writer.isOpened():
            raise InputError("cannot write the video file %s" % path)

    def write(self, rgb):
        cv2 = _cv2()
        frame = np.clip(np.round(np.asarray(rgb, np.float32)), 0, 255).astype(np.uint8)
        if frame.shape[:2] != self.size:
            frame = cv2.resize(frame, (self.size[1], self.size[0]), interpolation=cv2.INTER_AREA)
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self):
        self._writer.release()
