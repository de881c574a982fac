"""The style library over the protocol: style_list / style_add / style_rename / style_remove /
style_export / style_import. Requests are checked on the I/O loop; the library work (file I/O,
decoding, TFRecords) runs one call at a time on its own thread, never on the loop. The same
thread checks the style files a submit names before the job is queued."""

import logging
import os
import queue
import threading
from typing import Any, Callable, Dict, List, Optional

from shared import protocol as p
from shared import validation

from ..core import images
from ..core.errors import EngineError, InputError
from . import pixels

log = logging.getLogger(__name__)


def require_library(library: Any, field: Optional[str] = None) -> Any:
    """The engine's style library, or `unsupported` when this engine has none (it could not open it)."""
    if library is None:
        raise p.ProtocolError(p.E_UNSUPPORTED, "this engine has no style library" +
                              (", so %s cannot name a library style" % field if field else ""), field)
    return library


class LibraryWorker(threading.Thread):
    """Runs style library calls one at a time, off the I/O loop."""

    def __init__(self):
        super().__init__(name="neural-style-library", daemon=True)
        self.tasks: "queue.Queue[Optional[Callable]]" = queue.Queue()

    def run(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            task()


class LibraryHandlers:
    """The handlers of the style_* messages. `reply(identity, req, header, frames)` is thread-safe
    (the server's outbox)."""

    def __init__(self, library: Any, limits: Dict[str, Any], reply: Callable):
        self.library = library
        self.limits = limits
        self._reply = reply
        self.worker = LibraryWorker()

    def _check_image_file(self, path: str, field: str, what: str) -> None:
        """Refuse a folder, an empty file, a non-image or one of more than limits.max_pixels from its
        header alone, before anything is decoded (a small PNG may declare 30000 x 30000 pixels)."""
        try:
            images.check_image_file(path, what, int(self.limits["max_pixels"]))
        except InputError as error:
            raise p.ProtocolError(error.code, "%s: %s" % (field, error.message), field)

    def start(self) -> None:
        self.worker.start()

    def check_styles(self, styles: List[p.StyleRef], then: Callable[[Optional[p.ProtocolError]], None]) -> None:
        """On the library thread: refuse a missing, hostile or unknown style file or library id from
        a stat and the file's header (a slow disk must not stall the I/O loop), then `then(error or None)`."""
        def task() -> None:
            try:
                self._check_style_sources(styles)
                error = None
            except p.ProtocolError as refused:
                error = refused
            except EngineError as refused:
                error = p.ProtocolError(refused.code, refused.message, refused.field)
            except Exception as failure:
                log.exception("checking a job's style files failed")
                error = p.ProtocolError(p.E_INTERNAL, "the style files could not be checked (%s)" % failure)
            then(error)

        self.worker.tasks.put(task)

    def _check_style_sources(self, styles: List[p.StyleRef]) -> None:
        for index, style in enumerate(styles):
            field = "styles[%d]" % index
            if style.kind == "file":
                if not os.path.exists(style.path):
                    raise p.ProtocolError(p.E_NOT_FOUND, "%s.path: the style file %s does not exist on the "
                                          "engine's machine" % (field, style.path[:500]), field + ".path")
                self._check_image_file(style.path, field + ".path", "style")
            elif style.kind == "library":
                try:
                    path = require_library(self.library, field).path_of(style.style_id)
                except EngineError as error:
                    raise p.ProtocolError(error.code, error.message, field + ".id")
                if not os.path.isfile(path):
                    raise p.ProtocolError("style_not_found", "%s.id: the style library has no style %r"
                                          % (field, style.style_id[:40]), field + ".id")

    def stop(self) -> None:
        self.worker.tasks.put(None)
        self.worker.join(timeout=30)

    def handlers(self) -> Dict[str, Callable]:
        return {
            p.STYLE_LIST: self._on_style_list, p.STYLE_ADD: self._on_style_add,
            p.STYLE_RENAME: self._on_style_rename, p.STYLE_REMOVE: self._on_style_remove,
            p.STYLE_EXPORT: self._on_style_export, p.STYLE_IMPORT: self._on_style_import,
        }

    def _library_call(self, identity: bytes, req: Any, work: Callable) -> None:
        """Run work() -> (header, frames) on the library thread; errors become `error` replies."""
        require_library(self.library)

        def task() -> None:
            try:
                header, frames = work()
            except (EngineError, p.ProtocolError) as error:
                header, frames = p.error_message(error.code, error.message, error.field), []
            except Exception as error:
                log.exception("style library call failed")
                header, frames = p.error_message(p.E_INTERNAL, "the style library call failed (%s: %s)"
                                                 % (type(error).__name__, str(error)[:200])), []
            self._reply(identity, req, header, frames)

        self.worker.tasks.put(task)

    @staticmethod
    def _style_maps(infos: List[Any]) -> tuple:
        maps, frames = [], []
        for info in infos:
            entry = info.to_dict(with_thumbnail=False)
            if info.thumbnail_png:
                frames.append(info.thumbnail_png)
                entry["thumbnail_frame"] = len(frames)
            maps.append(entry)
        return maps, frames

    def _style_id(self, header: Dict[str, Any]) -> str:
        return validation.require_text(header, "id", 200, allow_empty=False)

    def _on_style_list(self, identity, header, frames, req) -> None:
        def work():
            maps, thumbs = self._style_maps(self.library.list())
            return p.message(p.STYLES, styles=maps), thumbs
        self._library_call(identity, req, work)

    def _on_style_add(self, identity, header, frames, req) -> None:
        name = validation.require_text(header, "name", int(self.limits["max_name_chars"]), optional=True)
        credit = validation.require_text(header, "credit", 4000, optional=True) or ""
        if header.get("image") is not None:
            frame_set = validation.FrameSet(frames)
            image = validation.validate_pixels(header["image"], frame_set, "image", self.limits)
            frame_set.check_all_used()
            if not name:
                raise p.ProtocolError(p.E_MISSING, "name is missing (a style added from pixels needs a name)", "name")

            def work():
                rgb, _ = pixels.decode(image)
                maps, thumbs = self._style_maps([self.library.add_image(pixels.rgb_uint8(rgb), name, credit)])
                return p.message(p.STYLE, style=maps[0]), thumbs
        else:
            if len(frames) > 1:
                raise p.ProtocolError(p.E_FRAME, "style_add with a path carries no data frames")
            path = validation.require_path(header, "path", int(self.limits["max_path_chars"]))

            def work():
                self._check_image_file(path, "path", "style image")
                try:
                    info = self.library.add_file(path, name, credit)
                except InputError as error:       # damaged beyond the header
                    raise p.ProtocolError(error.code, "path: %s" % error.message, "path")
                maps, thumbs = self._style_maps([info])
                return p.message(p.STYLE, style=maps[0]), thumbs
        self._library_call(identity, req, work)

    def _on_style_rename(self, identity, header, frames, req) -> None:
        style_id = self._style_id(header)
        name = validation.require_text(header, "name", int(self.limits["max_name_chars"]), allow_empty=False)

        def work():
            maps, thumbs = self._style_maps([self.library.rename(style_id, name)])
            return p.message(p.STYLE, style=maps[0]), thumbs
        self._library_call(identity, req, work)

    def _on_style_remove(self, identity, header, frames, req) -> None:
        style_id = self._style_id(header)

        def work():
            self.library.remove(style_id)
            return p.message(p.OK), []
        self._library_call(identity, req, work)

    def _on_style_export(self, identity, header, frames, req) -> None:
        path = validation.require_path(header, "path", int(self.limits["max_path_chars"]))
        ids = validation.require(header, "ids", list)
        if not ids or len(ids) > 10000 or not all(isinstance(i, str) and 0 < len(i) <= 200 for i in ids):
            raise p.ProtocolError(p.E_INVALID, "ids must be a non-empty list of style ids (strings)", "ids")

        def work():
            count = self.library.export_pack(path, ids)
            return p.message(p.EXPORTED, count=int(count), path=path), []
        self._library_call(identity, req, work)

    def _on_style_import(self, identity, header, frames, req) -> None:
        path = validation.require_path(header, "path", int(self.limits["max_path_chars"]))

        def work():
            maps, thumbs = self._style_maps(self.library.import_pack(path))
            return p.message(p.STYLES, styles=maps), thumbs
        self._library_call(identity, req, work)
