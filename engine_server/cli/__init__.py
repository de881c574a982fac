"""The command line, `python -m engine_server COMMAND`: in-process stylize/losses, the daemon's
start/stop/status/run, and the style library (styles ...). May import everything else."""
