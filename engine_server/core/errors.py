"""The engine's error types. Every user-facing failure is an EngineError with one clear sentence."""


class EngineError(Exception):
    """A failure the user can act on: `code` is machine-readable, `message` one sentence,
    `field` names the offending input (e.g. "options.iterations") when there is one."""

    code = "engine_error"

    def __init__(self, code=None, message="", field=None):
        super().__init__(message)
        self.code = code or type(self).code
        self.message = message
        self.field = field

    def __str__(self):
        return self.message


class WeightsError(EngineError):
    """The VGG-19 weights file is missing, truncated or not the right file."""

    code = "weights"

    def __init__(self, message, field=None):
        super().__init__("weights", message, field)


class InputError(EngineError):
    """An image or option given to the engine cannot be used."""

    code = "bad_input"

    def __init__(self, message, field=None):
        super().__init__("bad_input", message, field)


class Cancelled(Exception):
    """The job was cancelled (should_cancel() turned true)."""

    def __init__(self):
        super().__init__("cancelled")
