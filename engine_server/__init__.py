"""The Neural Style engine: frozen VGG-19, Gatys losses, optimizer, CLI, daemon and style library."""

__version__ = "0.1.0"
