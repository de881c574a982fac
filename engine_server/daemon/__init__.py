"""The background engine: the ZeroMQ server loop, the job queue and runner, pixel frames and the
process life cycle. Serves shared/'s protocol; runs the core; may use the library."""
