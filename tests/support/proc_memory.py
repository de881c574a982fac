"""Memory of a running process, read from /proc (Linux)."""


def _status_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError("no %s for pid %d" % (field, pid))


def rss_kb(pid):
    """The resident set size of process `pid` in KiB."""
    return _status_kb(pid, "VmRSS")


def peak_rss_kb(pid):
    """The largest resident set size process `pid` has had so far, in KiB."""
    return _status_kb(pid, "VmHWM")
