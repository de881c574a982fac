"""The background service that runs the engine: a systemd user unit (Linux), a launchd agent (macOS)
or a logon task (Windows); registered at install, stopped at uninstall."""

import os
import platform
import shutil

from installing.manifest import make_dirs, write_text_atomic
from installing.output import out, quiet, run
from installing.project import HERE, LAUNCHD_LABEL, SERVICE_NAME, WINDOWS_TASK, home, paths, xdg


def systemd_user_available():
    if not shutil.which("systemctl"):
        return False
    code, _ = quiet(["systemctl", "--user", "show-environment"], timeout=10)
    return code == 0


def systemd_unit(engine_python, weights):
    def quote(word):
        return '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return ("[Unit]\n"
            "Description=Neural Style engine (VGG-19 style transfer for GIMP and Krita)\n"
            "Documentation=file://%s\n\n"
            "[Service]\n"
            "Type=simple\n"
            "ExecStart=%s -m engine_server run\n"
            "Environment=%s\n"
            "Restart=on-failure\n"
            "RestartSec=5\n\n"
            "[Install]\n"
            "WantedBy=default.target\n"
            % (os.path.join(HERE, "docs", "install.md"), quote(engine_python),
               quote("%s=%s" % (paths.WEIGHTS_ENV, weights))))


def launchd_plist(engine_python, weights):
    from xml.sax.saxutils import escape
    log = os.path.join(paths.state_dir(), "engine-launchd.log")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">\n'
            '<plist version="1.0"><dict>\n'
            '  <key>Label</key><string>%s</string>\n'
            '  <key>ProgramArguments</key><array><string>%s</string><string>-m</string>'
            '<string>engine_server</string><string>run</string></array>\n'
            '  <key>EnvironmentVariables</key><dict><key>%s</key><string>%s</string></dict>\n'
            '  <key>RunAtLoad</key><true/>\n'
            '  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>\n'
            '  <key>StandardErrorPath</key><string>%s</string>\n'
            '</dict></plist>\n'
            % (LAUNCHD_LABEL, escape(engine_python), paths.WEIGHTS_ENV, escape(weights), escape(log)))


def windows_task(engine_python):
    """The schtasks command that registers the engine to start (windowless, via pythonw) at logon."""
    pythonw = os.path.join(os.path.dirname(engine_python), "pythonw.exe")
    runner = pythonw if os.path.exists(pythonw) else engine_python
    return ["schtasks", "/Create", "/F", "/TN", WINDOWS_TASK, "/SC", "ONLOGON", "/RL", "LIMITED",
            "/TR", '"%s" -m engine_server run' % runner]


def service_file():
    system = platform.system()
    if system == "Darwin":
        return home("Library", "LaunchAgents", LAUNCHD_LABEL + ".plist")
    if system == "Windows":
        return None
    return os.path.join(xdg("XDG_CONFIG_HOME", ".config"), "systemd", "user", SERVICE_NAME + ".service")


def _start(kind, path, manifest):
    """Enable and start the registered service now; True when it started."""
    if kind == "windows":
        started = run(["schtasks", "/Run", "/TN", WINDOWS_TASK], check=False)[0] == 0
    elif kind == "launchd":
        domain = "gui/%d" % os.getuid()
        quiet(["launchctl", "bootout", "%s/%s" % (domain, LAUNCHD_LABEL)], timeout=30)
        started = run(["launchctl", "bootstrap", domain, path], check=False)[0] == 0
        if started:
            out.detail("loaded: it starts at login and now")
    elif not systemd_user_available():
        out.detail("no systemd user session here: written, not enabled; the plugins start the engine on demand")
        return False
    else:
        run(["systemctl", "--user", "daemon-reload"], check=False)
        started = run(["systemctl", "--user", "enable", "--now", SERVICE_NAME], check=False)[0] == 0
        if started:
            run(["systemctl", "--user", "restart", SERVICE_NAME], check=False)   # picks up an upgrade
            out.detail("enabled and started")
        else:
            out.warn("systemctl could not enable it; the plugins will start the engine on demand")
    if started:
        manifest.add("service", path, started=True)
    return started


def install_service(args, engine_python, weights, manifest, weights_ready=True):
    """Register the service; start it unless --no-start, or the weights are not there yet (it would
    only fail and restart): then the run that installs them starts it (start_pending_service)."""
    out.step("Background service")
    if args.no_service:
        out.detail("--no-service: none registered; the plugins start the engine when they need it")
        return
    system = platform.system()
    if system == "Windows":
        create = windows_task(engine_python)
        item = manifest.add("service", WINDOWS_TASK, platform="windows")
        run(create)
        out.detail("logon task %s: %s" % (WINDOWS_TASK, create[-1]))
        out.remember("logon task", WINDOWS_TASK)
    else:
        path = service_file()
        make_dirs(os.path.dirname(path), manifest)
        if system == "Darwin":
            make_dirs(paths.state_dir(), manifest)
            write_text_atomic(path, launchd_plist(engine_python, weights))
            item = manifest.add("service", path, platform="launchd")
            out.detail("launchd agent %s" % path)
            out.remember("launchd agent", path)
        else:
            write_text_atomic(path, systemd_unit(engine_python, weights))
            item = manifest.add("service", path, platform="systemd")
            out.detail("systemd user unit %s" % path)
            out.remember("systemd user unit", path)
    item.update(start_wanted=not args.no_start, started=False)
    manifest.save()
    if args.no_start:
        out.detail("--no-start: written, not enabled nor started")
    elif not weights_ready:
        out.detail("registered, not started yet: it needs the weights (the run that installs them starts it)")
    else:
        _start(item["platform"], item["path"], manifest)
    manifest.save()


def start_pending_service(manifest):
    """Start the service an earlier run registered but left stopped for want of the weights."""
    item = recorded_service(manifest)
    if item and item.get("start_wanted") and not item.get("started"):
        out.step("Background service: starting it now that the weights are there")
        _start(item["platform"], item["path"], manifest)
        manifest.save()


def stop_service(item):
    kind = item.get("platform")
    if kind == "systemd" and systemd_user_available():
        quiet(["systemctl", "--user", "disable", "--now", SERVICE_NAME], timeout=60)
        quiet(["systemctl", "--user", "daemon-reload"], timeout=30)
    elif kind == "launchd" and hasattr(os, "getuid"):
        quiet(["launchctl", "bootout", "gui/%d/%s" % (os.getuid(), LAUNCHD_LABEL)], timeout=30)
    elif kind == "windows":
        quiet(["schtasks", "/End", "/TN", WINDOWS_TASK], timeout=30)
        quiet(["schtasks", "/Delete", "/F", "/TN", WINDOWS_TASK], timeout=30)


def recorded_service(manifest):
    """The service install_service registered (its manifest item), or None."""
    return next((item for item in manifest.items if item["kind"] == "service"), None)
