"""Paints engine pictures into result layers in bands of rows, one band per turn of Qt's event loop,
and previews at most every PICTURE_INTERVAL_S, so that a large layer never holds Krita's UI thread
for long and frequent previews do not keep it busy (issue: no hitches over 100 ms)."""

import contextlib
import logging
import time

from PyQt5.QtCore import QObject, QTimer, pyqtSignal

log = logging.getLogger("neural_style")

BAND_BYTES = 1 << 20       # about 1 MB of layer bytes per setPixelData call
PICTURE_INTERVAL_S = 0.25  # previews are painted at most this often (a newer one replaces a waiting one)
SLOW_UI_STEP_S = 0.03      # a step on Krita's UI thread that took longer is logged


@contextlib.contextmanager
def timed(what):
    """Log `what` if it held Krita's UI thread longer than SLOW_UI_STEP_S (to find hitches)."""
    started = time.monotonic()
    yield
    took = time.monotonic() - started
    if took > SLOW_UI_STEP_S:
        log.info("slow UI step: %s took %.0f ms", what, took * 1000)


class BandPainter(QObject):
    """paint(key, node, rect, data, final): queue a picture; `painted(key, final)` once it is all in."""

    painted = pyqtSignal(object, bool)

    def __init__(self):
        super().__init__()
        self._pending = {}    # key -> [node, rect, data, final, next row]
        self._order = []
        self._started = {}    # key -> when its last picture began to be painted
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._paint_band)

    def paint(self, key, node, rect, data, final):
        current = self._pending.get(key)
        if current is not None and current[3] and not final:
            return                                   # never paint a preview over the result
        final = final or bool(current and current[3])
        due = self._started.get(key, 0.0) + PICTURE_INTERVAL_S - time.monotonic()
        if current is None and len(data) <= BAND_BYTES and (final or due <= 0):
            self._started[key] = time.monotonic()
            self._write(node, rect, data, 0, rect.height)   # one band: at once
            self.painted.emit(key, final)
            return
        # Later (a newer picture replaces one still waiting), or in bands.
        self._pending[key] = [node, rect, data, final, 0]
        if key not in self._order:
            self._order.append(key)
        self._schedule()

    def _schedule(self):
        if not self._order:
            return
        key = self._order[0]
        node, rect, data, final, row = self._pending[key]
        due = 0.0 if final or row else self._started.get(key, 0.0) + PICTURE_INTERVAL_S - time.monotonic()
        self._timer.start(max(0, int(due * 1000)))

    def busy(self):
        return bool(self._order)

    def clear(self):
        self._pending.clear()
        self._order = []
        self._started.clear()
        self._timer.stop()

    @staticmethod
    def _write(node, rect, data, row, rows):
        row_bytes = len(data) // max(rect.height, 1)
        with timed("painting %d rows" % rows):
            node.setPixelData(data[row * row_bytes:(row + rows) * row_bytes], rect.x, rect.y + row, rect.width, rows)

    def _paint_band(self):
        if not self._order:
            return
        key = self._order[0]
        node, rect, data, final, row = self._pending[key]
        if row == 0:
            self._started[key] = time.monotonic()
        row_bytes = len(data) // max(rect.height, 1)
        rows = max(1, min(rect.height - row, BAND_BYTES // max(row_bytes, 1)))
        self._write(node, rect, data, row, rows)
        row += rows
        if row >= rect.height:
            del self._pending[key]
            self._order.pop(0)
            self.painted.emit(key, final)
        else:
            self._pending[key][4] = row
        self._schedule()
