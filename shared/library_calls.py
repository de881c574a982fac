"""The style library calls of the client (a mixin of client.Client, which provides `_request`)."""

from typing import Any, Dict, List, Optional, Sequence

from . import protocol as p


class LibraryCalls:

    def list_styles(self) -> List[Dict[str, Any]]:
        """[{id, name, width, height, credit, added, thumbnail_png}] of the engine's style library."""
        header, frames = self._request(p.STYLE_LIST)
        return [self._style_info(item, frames) for item in header.get("styles", [])]

    def add_style(self, pixels: Optional[p.Pixels] = None, path: Optional[str] = None, name: Optional[str] = None,
                  credit: str = "") -> Dict[str, Any]:
        """Add a style from pixels (e.g. a layer) or from an image file on the engine's machine."""
        if (pixels is None) == (path is None):
            raise ValueError("add_style needs exactly one of pixels= or path=")
        fields: Dict[str, Any] = {"name": name, "credit": credit}
        frames: List[Any] = []
        if pixels is not None:
            fields["image"] = pixels.descriptor(1)
            frames.append(pixels.data)
        else:
            fields["path"] = path
        header, reply_frames = self._request(p.STYLE_ADD, frames, **fields)
        return self._style_info(header.get("style", {}), reply_frames)

    def rename_style(self, style_id: str, name: str) -> Dict[str, Any]:
        header, frames = self._request(p.STYLE_RENAME, id=style_id, name=name)
        return self._style_info(header.get("style", {}), frames)

    def remove_style(self, style_id: str) -> None:
        self._request(p.STYLE_REMOVE, id=style_id)

    def export_styles(self, pack_path: str, style_ids: Sequence[str]) -> int:
        """Write the chosen styles to a pack file on the engine's machine; returns how many."""
        header, _ = self._request(p.STYLE_EXPORT, path=pack_path, ids=list(style_ids))
        return int(header.get("count", 0))

    def import_styles(self, pack_path: str) -> List[Dict[str, Any]]:
        header, frames = self._request(p.STYLE_IMPORT, path=pack_path)
        return [self._style_info(item, frames) for item in header.get("styles", [])]

    @staticmethod
    def _style_info(item: Dict[str, Any], frames: List[bytes]) -> Dict[str, Any]:
        info = dict(item)
        index = info.pop("thumbnail_frame", None)
        info["thumbnail_png"] = frames[index] if isinstance(index, int) and 0 < index < len(frames) else b""
        return info
