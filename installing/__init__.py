"""The installer's steps, one job per module; `installer.py` (the checkout's root) parses the
arguments and runs them. Standard library only. The module map is in docs/install.md.

    sequence       the install run: the steps in order; a failed step does not stop the others
    project        the checkout, its version, the pins, the weights' URL and md5; shared/paths.py
    output         printing and logging every step; run/quiet for commands; InstallError
    manifest       what the installer created (for --uninstall); make_dirs, write_text_atomic
    engine_env     the engine's venv (or --dev / --reuse-env), the TensorFlow build, pip
    weights        the VGG-19 weights: download (resume, retry) or a local copy, md5-verified
    editors        which GIMP 3 and Krita are installed, where their plugin folders are
    editor_python  the editor's own Python version, read from its files
    plugins        build each plugin next to its folder and swap it in, enable the Krita one
    kritarc        read and edit kritarc's [python] section (install, check and uninstall)
    editor_deps    pyzmq/msgpack wheels for the editors' own Pythons, into the plugin's vendor/
    engine_config  engine.json: write and read
    service        the background service: systemd, launchd, a Windows logon task
    check          --check: one small check per part, printed as a table
    uninstall      --uninstall
    first_run      --first-run: the installed engine stylizes the bundled samples
"""
