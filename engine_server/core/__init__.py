"""The engine's core: VGG-19 and its weights, the losses, the optimizers, stylize (scales, tiles,
memory), colors and image files. Imports nothing from the daemon, the library or the CLI."""
