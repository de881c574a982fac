"""The README's quick start: its two commands (install, then `--first-run` on the bundled public-domain
samples), the developers' test command that .ci/run runs exactly, and one supported Python range."""

import os
import re
import sys

from PIL import Image

from installing import first_run as first_run_module
from installing.project import ENGINE_PYTHON, HERE
from tests.test_installer_helpers import checkout, user  # noqa: F401 (fixtures)


def read(*parts):
    with open(os.path.join(HERE, *parts), encoding="utf-8") as f:
        return f.read()


def test_quick_start_is_two_commands_an_artist_runs_as_themselves():
    quick = read("README.md").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["python3 installer.py", "python3 installer.py --first-run"]
    assert "sudo" not in quick and ".ci/run" not in quick and "../shared" not in read("README.md")


def test_ci_runs_exactly_the_readme_test_command():
    readme = read("README.md")
    command = re.search(r"The developers' test command is `([^`]+)`", readme).group(1)
    ci_lines = [line.strip() for line in read(".ci", "run").splitlines()]
    assert command in ci_lines


def test_samples_are_small_and_have_their_sources():
    sources = read("samples", "SOURCES.md")
    for name in ("photo.jpg", "painting.jpg"):
        path = os.path.join(HERE, "samples", name)
        assert os.path.getsize(path) <= 100 * 1024 and name in sources
        Image.open(path).verify()
    assert "public domain" in sources
    assert read("LICENSE").startswith("MIT License")


def test_one_supported_python_range():
    low, high = ENGINE_PYTHON
    wanted = 'requires-python = ">=%d.%d,<%d.%d"' % (low + (high[0], high[1] + 1))
    assert wanted in read("pyproject.toml")
    assert "Python %d.%d to %d.%d" % (low + high) in read("docs", "install.md")


def test_first_run_stylizes_the_bundled_samples_with_the_installed_engine(user, fake_weights, monkeypatch, capsys):
    user.fake_editors()
    user.install(fake_weights, "--no-service")
    for name, value in user.env.items():
        monkeypatch.setenv(name, value)
    output = os.path.join(user.root, "first.png")
    assert first_run_module.first_run(output, size=64, iterations=3) == 0
    assert Image.open(output).size[1] == 64           # the photo is taller than wide
    printed = capsys.readouterr().out
    assert "Your first result: %s" % output in printed


def test_first_run_before_any_install_says_what_to_do(user):
    done = user.run("--first-run")
    assert done.returncode == 1 and "run python3 installer.py first" in done.output
    assert "Traceback" not in done.output and sys.executable
