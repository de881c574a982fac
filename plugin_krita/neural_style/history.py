"""The result history: the last finished results of each open document, with the style and the
settings that made them and a thumbnail (the docker shows them; a click restores the settings)."""

import copy

from krita import Krita

HISTORY_LENGTH = 12
THUMBNAIL_SIZE = 64


class HistoryEntry:
    def __init__(self, label, style, settings, thumbnail):
        self.label = label            # "Paint – Starry"
        self.style = style            # StyleChoice
        self.settings = settings      # Settings (a copy: later changes in the docker do not touch it)
        self.thumbnail = thumbnail    # QImage


class History:
    def __init__(self):
        self._documents = []          # [(Document, [HistoryEntry], newest last)]

    def add(self, document, result, source_name, style, settings):
        entry = HistoryEntry(result.name(), copy.copy(style), copy.deepcopy(settings),
                             result.thumbnail(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self._forget_closed()
        entries = self._entries(document, create=True)
        entries.append(entry)
        del entries[:-HISTORY_LENGTH]

    def entries(self, document):
        """Newest first."""
        return list(reversed(self._entries(document) or []))

    def _entries(self, document, create=False):
        for known, entries in self._documents:
            if known == document:
                return entries
        if create and document is not None:
            self._documents.append((document, []))
            return self._documents[-1][1]
        return None

    def _forget_closed(self):
        open_documents = Krita.instance().documents()
        self._documents = [(d, e) for d, e in self._documents if any(d == other for other in open_documents)]
