"""kritarc: the one place that reads and edits its [python] section (install, --check, --uninstall)."""

import os

from installing.manifest import make_dirs, write_text_atomic
from installing.project import PLUGIN_NAME

ENABLE_KEY = "enable_%s" % PLUGIN_NAME


def _python_section(lines):
    """(start, end) line indexes of kritarc's [python] section (start None when there is none)."""
    start = next((i for i, line in enumerate(lines) if line.strip() == "[python]"), None)
    if start is None:
        return None, None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
    return start, end


def _key_line(lines, start, end, key):
    """The index of `key=...` inside the section lines[start + 1:end], or None."""
    if start is None:
        return None
    return next((i for i in range(start + 1, end) if lines[i].split("=", 1)[0].strip() == key), None)


def _read_lines(path):
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as f:
        return f.read().splitlines(True)


def python_setting(path, key=ENABLE_KEY):
    """The value of `key` in kritarc's [python] section (stripped), or None when it is not set there."""
    if not os.path.exists(path):
        return None
    lines = _read_lines(path)
    index = _key_line(lines, *_python_section(lines), key)
    if index is None or "=" not in lines[index]:
        return None
    return lines[index].split("=", 1)[1].strip()


def plugin_enabled(path):
    """kritarc switches the plugin on: `[python] enable_neural_style=true`."""
    return python_setting(path) == "true"


def set_kritarc(path, manifest, key=ENABLE_KEY):
    """Set `[python] key=true` in kritarc, keeping every other line exactly as it is."""
    existed = os.path.exists(path)
    lines = _read_lines(path) if existed else []
    newline = "\r\n" if lines and lines[0].endswith("\r\n") else "\n"
    state = {"file_existed": existed, "previous": None, "section_created": False,
             "final_newline_added": False, "blank_added": False}
    start, end = _python_section(lines)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += newline
        state["final_newline_added"] = True
    if start is None:
        if lines and lines[-1].strip():
            lines.append(newline)
            state["blank_added"] = True
        lines += ["[python]" + newline, "%s=true%s" % (key, newline)]
        state["section_created"] = True
    else:
        existing = _key_line(lines, start, end, key)
        if existing is not None:
            state["previous"] = lines[existing].split("=", 1)[1].strip() if "=" in lines[existing] else ""
            lines[existing] = "%s=true%s" % (key, lines[existing][len(lines[existing].rstrip("\r\n")):])
        else:
            insert = end
            while insert > start + 1 and not lines[insert - 1].strip():
                insert -= 1
            lines.insert(insert, "%s=true%s" % (key, newline))
    if manifest.find("kritarc", path) is None:   # the state before the first edit, so uninstall restores that
        manifest.add("kritarc", path, key=key, **state)
    make_dirs(os.path.dirname(path), manifest)
    write_text_atomic(path, "".join(lines))


def unset_kritarc(item):
    """Undo set_kritarc: the old value back, or our line (and the section we added) removed."""
    path, key = item["path"], item["key"]
    if not os.path.exists(path):
        return
    lines = _read_lines(path)
    start, end = _python_section(lines)
    index = _key_line(lines, start, end, key)
    if index is None:
        return
    if item.get("previous") is not None:
        lines[index] = "%s=%s%s" % (key, item["previous"], lines[index][len(lines[index].rstrip("\r\n")):])
    else:
        del lines[index]
        end -= 1
        if item.get("section_created") and not any(line.strip() for line in lines[start + 1:end]):
            del lines[start:end]
            if item.get("blank_added") and start == len(lines) and start > 0 and not lines[start - 1].strip():
                del lines[start - 1]
    if item.get("final_newline_added") and lines:
        lines[-1] = lines[-1].rstrip("\r\n")
    text = "".join(lines)
    if not item.get("file_existed") and not text.strip():
        os.remove(path)
    else:
        write_text_atomic(path, text)
