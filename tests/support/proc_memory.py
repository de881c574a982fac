"""Memory of a running process, read from /proc (Linux)."""


def rss_kb(pid):
    """The resident set size of process `pid` in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for pid %d" % pid)
