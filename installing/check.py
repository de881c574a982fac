"""--check: one small check per part (plugins, kritarc, the editors' pyzmq/msgpack, engine.json, the
engine's Python, TensorFlow's device, weights, service, the engine answering), printed as a table.
Each check reads the state with the same functions the install writes it with."""

import os
import platform
import tempfile

from installing.editor_deps import deps_placed, probe_editor_python
from installing.editors import find_editors, recorded_editors
from installing.engine_config import read_engine_config
from installing.engine_env import nvidia_driver
from installing.kritarc import plugin_enabled
from installing.manifest import Manifest, manifest_path
from installing.output import quiet
from installing.plugins import installed_info, plugin_entry
from installing.project import VERSION, WEIGHTS_MD5, paths
from installing.service import recorded_service
from installing.weights import md5_of

OK, WARN, FAIL = "ok", "WARN", "FAIL"
RERUN = "run: python3 installer.py"
DEVICE_PROBE = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
print("TF TensorFlow", tf.__version__ + ",", ", ".join(g.name for g in gpus) or "CPU only")
"""


class Table:
    """The rows of the check: (part, status, detail, what to do)."""

    def __init__(self):
        self.rows = []

    def row(self, part, status, detail, todo=""):
        self.rows.append((part, status, detail, todo))

    def print(self):
        widths = [max(len(r[i]) for r in self.rows) for i in range(2)]
        print("\nNeural Style installation check (installer %s)\n" % VERSION)
        for part, status, detail, todo in self.rows:
            print("  %-*s  %-4s  %s" % (widths[0], part, status, detail))
            if todo and status != OK:
                print("  %-*s        -> %s" % (widths[0], "", todo))
        failures = self.failures()
        print("\n%s" % ("all is well" if not failures else "%d problem(s): see the -> lines above" % failures))

    def failures(self):
        return sum(1 for r in self.rows if r[1] == FAIL)


def last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def editors_to_check(args, manifest):
    """Every editor found now and every one installed into before (by plugin folder), with what the
    install did for its Python (.deps, from the manifest)."""
    recorded = {e.plugin_dir: e for e in recorded_editors(manifest)}
    editors = {}
    for editor in find_editors(args):
        editor.deps = getattr(recorded.get(editor.plugin_dir), "deps", None)
        editors[editor.plugin_dir] = editor
    for plugin_dir, editor in recorded.items():
        editors.setdefault(plugin_dir, editor)
    return list(editors.values())


def check_plugin(table, editor):
    """False when the plugin is not there at all (then nothing else about this editor is checked)."""
    info, entry = installed_info(editor), plugin_entry(editor)
    if info is None or not os.path.exists(entry):
        table.row(editor.label, FAIL, "plugin missing in %s" % editor.folder, RERUN)
        return False
    installed = info.get("version")
    if not os.path.isdir(os.path.join(editor.plugin_dir, "shared")):
        table.row(editor.label, FAIL, "plugin %s lacks its shared/ folder" % installed, RERUN)
    elif editor.name == "gimp" and os.name != "nt" and not os.access(entry, os.X_OK):
        table.row(editor.label, FAIL, "%s is not executable" % entry, RERUN)
    elif installed != VERSION:
        table.row(editor.label, FAIL, "plugin %s installed, this checkout is %s" % (installed, VERSION),
                  "run: python3 installer.py (upgrades in place)")
    else:
        table.row(editor.label, OK, "plugin %s in %s" % (installed, editor.folder))
    return True


def check_kritarc(table, editor):
    enabled = plugin_enabled(editor.kritarc)
    table.row("  enabled in kritarc", OK if enabled else FAIL, editor.kritarc,
              "" if enabled else "run: python3 installer.py (or Krita: Settings > Python Plugin Manager)")


def check_editor_deps(table, editor):
    part = "  pyzmq/msgpack for it"
    done = getattr(editor, "deps", None) or ""
    if deps_placed(editor):
        table.row(part, OK, "%s, in %s" % (done or "placed", editor.vendor_dir()))
        return
    if done.startswith("MISSING"):
        table.row(part, FAIL, "not placed for the editor's own Python %s" % (editor.python_version or ""),
                  done.split(": ", 1)[1])
        return
    if not editor.python_probe:
        table.row(part, WARN, done or "not placed for the editor's own Python",
                  "re-run with --%s-app PATH or --%s-python X.Y (docs/install.md)" % (editor.name, editor.name))
        return
    has_deps, version = probe_editor_python(editor)
    if has_deps:
        table.row(part, OK, "its Python %s imports them" % version)
    elif version:
        table.row(part, FAIL, "its Python %s cannot import them" % version, RERUN)
    else:
        table.row(part, WARN, "could not run %s" % " ".join(editor.python_probe),
                  "make sure the editor's Python can import zmq and msgpack (docs/install.md)")


def check_editors(table, args, manifest):
    editors = editors_to_check(args, manifest)
    if not editors and not (args.no_plugins or (args.no_krita and args.no_gimp)):
        table.row("editors", FAIL, "neither GIMP 3 nor Krita found",
                  "install one, start it once, re-run the installer")
    for editor in editors:
        if not check_plugin(table, editor):
            continue
        if editor.name == "krita" and editor.kritarc:
            check_kritarc(table, editor)
        check_editor_deps(table, editor)


def check_engine_config(table):
    """The engine's Python named in engine.json, or None."""
    config_path = paths.engine_config_path()
    config = read_engine_config()
    if not os.path.exists(config_path):
        table.row("engine.json", FAIL, "%s is missing" % config_path, RERUN)
    elif config is None:
        table.row("engine.json", FAIL, "%s is not the installer's JSON" % config_path, RERUN)
    else:
        table.row("engine.json", OK, "%s (version %s)" % (config_path, config.get("version")))
        return config["command"][0]
    return None


def check_engine_python(table, engine_python):
    """True when it imports the engine (from a neutral folder, as the plugins start it)."""
    code, text = quiet([engine_python, "-c", "import engine_server, shared, os; "
                                              "print(list(engine_server.__path__)[0])"], timeout=60,
                       cwd=tempfile.gettempdir())
    if code != 0:
        table.row("engine Python", FAIL, "%s cannot import the engine: %s" % (engine_python, last_line(text)),
                  "run: python3 installer.py (it repairs the environment)")
        return False
    table.row("engine Python", OK, "%s (engine in %s)" % (engine_python, text.strip().splitlines()[-1]))
    return True


def check_device(table, engine_python):
    code, text = quiet([engine_python, "-c", DEVICE_PROBE], timeout=180)
    lines = [line for line in (text or "").splitlines() if line.startswith("TF ")]
    if code != 0 or not lines:
        table.row("TensorFlow device", FAIL, "TensorFlow does not import: %s" % last_line(text), RERUN)
        return
    device = lines[-1][3:]
    driver = nvidia_driver() if platform.system() == "Linux" else None
    if driver and "CPU only" in device:
        table.row("TensorFlow device", FAIL, "%s, though %s" % (device, driver),
                  "run: python3 installer.py --tensorflow gpu")
    else:
        table.row("TensorFlow device", OK, device)


def check_weights(table, manifest):
    weights = paths.default_weights_path()
    record = manifest.find("file", weights) or {}
    if not os.path.exists(weights):
        table.row("VGG-19 weights", FAIL, "%s is missing" % weights,
                  "run: python3 installer.py --weights FILE (a copy you have), or python3 installer.py (downloads it)")
        return False
    actual = md5_of(weights)
    if actual == WEIGHTS_MD5:
        table.row("VGG-19 weights", OK, "%s, md5 verified" % weights)
        return True
    elif record.get("verified") is False and record.get("md5") == actual:
        table.row("VGG-19 weights", WARN,
                  "%s is an UNVERIFIED file installed with --no-verify (md5 %s)" % (weights, actual),
                  "fine for tests; for real use run: python3 installer.py (downloads the Keras file)")
        return True
    else:
        table.row("VGG-19 weights", FAIL,
                  "%s is damaged or not the Keras VGG-19 file (md5 %s)" % (weights, actual),
                  "run: python3 installer.py (downloads it again) or --weights FILE")
    return False


def check_service(table, service, weights_ok=True):
    if service and service.get("platform") in ("systemd", "launchd"):
        present = os.path.exists(service["path"])
        table.row("service", OK if present else FAIL,
                  service["path"] if present else "%s is missing" % service["path"], "" if present else RERUN)
    elif service:
        table.row("service", OK, "logon task %s" % service["path"])
    if service and service.get("start_wanted") and not service.get("started") and not weights_ok:
        table.rows[-1] = table.rows[-1][:2] + (table.rows[-1][2] + " (starts when the weights are installed)", "")
    else:
        table.row("service", OK, "none (the plugins start the engine on demand)")


def check_reachable(table, engine_python, service):
    code, text = quiet([engine_python, "-m", "engine_server", "status"], timeout=30)
    message = last_line(text)
    if code == 0:
        table.row("engine reachable", OK, message or "answers")
    elif "No module named" in (text or "") or (code == 2 and "invalid choice" in (text or "")):
        table.row("engine reachable", FAIL, "the engine has no `status` command (%s)" % message,
                  "this checkout or environment is incomplete: update it, then run: python3 installer.py")
    elif service and service.get("started"):
        table.row("engine reachable", FAIL, message or "does not answer",
                  "see %s; start it: %s -m engine_server start" % (paths.log_path(), engine_python))
    else:
        table.row("engine reachable", WARN,
                  "not running (%s); the plugins start it on demand" % (message or "no answer"),
                  "to try now: %s -m engine_server start" % engine_python)


def check(args):
    """Print the table; 1 when any part fails, else 0."""
    manifest = Manifest(manifest_path())
    table = Table()
    check_editors(table, args, manifest)
    engine_python = check_engine_config(table)
    if engine_python and not check_engine_python(table, engine_python):
        engine_python = None
    if engine_python:
        check_device(table, engine_python)
    weights_ok = check_weights(table, manifest)
    service = recorded_service(manifest)
    check_service(table, service, weights_ok)
    if engine_python and weights_ok:   # without weights the engine cannot start: that row says it all
        check_reachable(table, engine_python, service)
    table.print()
    return 1 if table.failures() else 0
