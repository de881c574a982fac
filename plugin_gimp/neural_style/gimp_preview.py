"""The dialog's live preview: the current settings on the current layer (and selection), scaled to about
160 px and stylized by the same engine with the same options, as a "preview" job that the engine runs
ahead of full jobs. It refreshes by itself shortly after a setting changes and refines while it runs.

The engine is talked to from a worker thread that owns its own Client (a Client belongs to one thread),
so starting the engine or waiting for it never freezes the dialog; GIMP is only called from the main
thread, which reads the pixels and paints the pictures the worker hands over.
"""

import threading

import gi
gi.require_version("Gtk", "3.0")
gi.require_version("GdkPixbuf", "2.0")
from gi.repository import GdkPixbuf, GLib, Gtk  # noqa: E402

import gimp_arguments as arguments  # noqa: E402
import gimp_layers as layers_io     # noqa: E402

PREVIEW_SIZE = 160            # longest side of the preview, in pixels
STYLE_PREVIEW_SIZE = 640      # a style layer is sent at most this big for a preview
DEBOUNCE_MS = 400             # a refresh waits this long after the last change
PICTURE_EVERY_S = 0.2         # the engine sends a refined picture at most this often
START_TIMEOUT_S = 60.0
NOT_SETTINGS = ("advanced-expanded", "run-mode", "image", "drawables")


class PreviewWorker(threading.Thread):
    """Runs the newest request as a preview job; `post(kind, payload)` is called from this thread."""

    def __init__(self, endpoint, post):
        super().__init__(name="neural-style-preview", daemon=True)
        self.endpoint, self.post = endpoint, post
        self._lock = threading.Lock()
        self._pending = None          # (request,) or (None,) to stop the current job
        self._wake = threading.Event()
        self._stopping = threading.Event()

    def request(self, request):
        with self._lock:
            self._pending = (request,)
        self._wake.set()

    def stop(self):
        self._stopping.set()
        self._wake.set()

    def run(self):
        from shared.client import Client, ClientError
        client = job = None
        try:
            while not self._stopping.is_set():
                with self._lock:
                    pending, self._pending = self._pending, None
                if pending is not None:
                    if job is not None and not job.done:
                        job.cancel()          # the newer request replaces it
                    job = None
                    if pending[0] is None:
                        continue
                    try:
                        if client is None:
                            self.post("status", "Starting the style engine\u2026")
                            client = Client(endpoint=self.endpoint or None, autostart=True,
                                            start_timeout=START_TIMEOUT_S, client_name="GIMP Neural Style preview")
                        job = client.submit(priority="preview", **pending[0])
                        self.post("status", "Waiting for the engine\u2026")
                    except ClientError as error:
                        client = self._lost(client, error)
                    continue
                if job is None or job.done:
                    self._wake.wait(0.5)
                    self._wake.clear()
                    continue
                try:
                    event = job.poll(0.1)
                except ClientError as error:
                    client, job = self._lost(client, error), None
                    continue
                if event is not None:
                    self._event(event)
        finally:
            if job is not None and not job.done:
                job.cancel()
            if client is not None:
                client.close()        # the engine drops whatever is left of this client's jobs

    def _event(self, event):
        from shared.explain import explain
        from shared.progress import progress_text
        if event.pixels is not None:
            self.post("picture", event.pixels)
        if event.type == "progress":
            self.post("status", progress_text(event.header) or "Working\u2026")
        elif event.type == "result":
            self.post("status", "Preview done")
        elif event.type == "error":
            explanation = explain(code=event.header.get("code"), message=event.header.get("message") or "")
            self.post("error", explanation)

    def _lost(self, client, error):
        """Report a client failure; the next request starts over with a new client (and engine)."""
        from shared.explain import explain
        self.post("error", explain(error=error))
        if client is not None:
            client.close()
        return None


class PreviewPane:
    """The preview frame of the dialog: the picture, a line of status, and the Preview switch."""

    def __init__(self, config, image, drawable):
        self.config, self.image, self.drawable = config, image, drawable
        self.pictures = 0
        self._content = None
        self._styles = {}
        self._timer = None
        self._closed = False
        self.worker = None
        self.widget = Gtk.Frame(label="Preview")
        box = Gtk.Box(orientation=Gtk.Orientation.VERTICAL, spacing=4, margin=6)
        self.picture = Gtk.Image(name="neural-style-preview")
        self.picture.set_size_request(PREVIEW_SIZE, PREVIEW_SIZE)
        self.status = Gtk.Label(name="neural-style-preview-status", xalign=0.0, wrap=True)
        self.status.set_max_width_chars(40)
        self.switch = Gtk.CheckButton(label="Pre_view", use_underline=True, name="neural-style-preview-switch")
        self.switch.set_active(bool(config.get_property("preview")))
        self.switch.connect("toggled", lambda button: config.set_property("preview", button.get_active()))
        for child in (self.picture, self.status, self.switch):
            box.pack_start(child, False, False, 0)
        self.widget.add(box)
        self._handler = config.connect("notify", self._changed)

    def start(self):
        self._schedule(0)

    def close(self):
        self._closed = True
        self.config.disconnect(self._handler)
        if self._timer is not None:
            GLib.source_remove(self._timer)
            self._timer = None
        if self.worker is not None:
            self.worker.stop()
            self.worker.join(5.0)

    # ----------------------------------------------------------------------------- main thread

    def _changed(self, config, pspec):
        if pspec.name not in NOT_SETTINGS:
            self._schedule(DEBOUNCE_MS)

    def _schedule(self, delay_ms):
        if self._timer is not None:
            GLib.source_remove(self._timer)
        self._timer = GLib.timeout_add(delay_ms, self._refresh)

    def _refresh(self):
        self._timer = None
        if not self.config.get_property("preview"):
            if self.worker is not None:
                self.worker.request(None)
            self._show_status("Preview is off")
            return False
        try:
            request = self._request()
        except (arguments.UserError, ValueError) as error:   # SettingsError is a ValueError
            text = str(error)
            self._show_status(text[:1].upper() + text[1:])
            return False
        if self.worker is None:
            self.worker = PreviewWorker(self.config.get_property("engine-endpoint"), self._post)
            self.worker.start()
        self.worker.request(request)
        return False

    def _request(self):
        from shared import protocol
        if self.drawable is None or not self.drawable.is_layer() or self.drawable.is_group():
            raise arguments.UserError("select a layer to see a preview")
        values = arguments.read_values(self.config)
        options = arguments.job_options(values)
        if self._content is None:
            width, height, scale, data = layers_io.read_scaled(self.drawable, "R'G'B'A u8", PREVIEW_SIZE)
            mask = layers_io.read_scaled_mask(self.image, self.drawable, scale, width, height)
            self._content = (width, height, scale, data, mask)
        width, height, scale, data, mask = self._content
        options["max_size"] = min(options["max_size"], PREVIEW_SIZE)
        options["preview_interval_s"] = PICTURE_EVERY_S
        options["feather"] = int(round(options["feather"] * scale))
        return {"image": protocol.Pixels(width, height, 4, "u8", data),
                "mask": protocol.Pixels(width, height, 1, "u8", mask) if mask is not None else None,
                "styles": [self._style(protocol, values)], "options": options}

    def _style(self, protocol, values):
        source = values["style-source"]
        if source == "file":
            return protocol.StyleRef.file(arguments.check_style_file(values["style-file"]))
        if source == "library":
            style_id = (values["style-library-id"] or "").strip()
            if not style_id:
                raise arguments.UserError("choose a style from the library")
            return protocol.StyleRef.library(style_id)
        layer = values["style-layer"]
        if layer is None or not layer.is_valid():
            raise arguments.UserError("choose the layer to take the style from")
        key = layer.get_id()
        if key not in self._styles:
            width, height, _, data = layers_io.read_scaled(layer, "R'G'B'A u8", STYLE_PREVIEW_SIZE)
            self._styles[key] = protocol.Pixels(width, height, 4, "u8", data)
        return protocol.StyleRef.pixels(self._styles[key], name=layer.get_name())

    def _post(self, kind, payload):       # from the worker thread
        GLib.idle_add(self._deliver, kind, payload)

    def _deliver(self, kind, payload):
        if self._closed:
            return False
        if kind == "picture":
            data = GLib.Bytes.new(bytes(payload.data))
            pixbuf = GdkPixbuf.Pixbuf.new_from_bytes(data, GdkPixbuf.Colorspace.RGB, True, 8, payload.width,
                                                     payload.height, payload.width * 4)
            self.picture.set_from_pixbuf(pixbuf)
            self.pictures += 1
        elif kind == "error":
            self._show_status(payload.summary, payload.details)
        else:
            self._show_status(payload)
        return False

    def _show_status(self, text, details=None):
        self.status.set_text(text)
        self.status.set_tooltip_text(details)
