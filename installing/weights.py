"""VGG-19 weights: download (progress, resume, retry) or a local copy, always verified."""

import hashlib
import http.client
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request

from installing.manifest import make_dirs
from installing.output import InstallError, out
from installing.project import HDF5_MAGIC, VERSION, WEIGHTS_MD5, paths


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == HDF5_MAGIC


class Progress:
    def __init__(self, total, start=0):
        self.total, self.done, self.started = total, start, time.monotonic()
        self.first, self.shown, self.tty = start, -1, sys.stdout.isatty()

    def advance(self, count):
        self.done += count
        percent = int(self.done * 100 / self.total) if self.total else 0
        if self.tty:
            if percent != self.shown:
                speed = (self.done - self.first) / max(time.monotonic() - self.started, 1e-3) / 1e6
                bar = "#" * (percent // 4) + "." * (25 - percent // 4)
                sys.stdout.write("\r    [%s] %3d%%  %5.1f / %5.1f MB  %4.1f MB/s"
                                 % (bar, percent, self.done / 1e6, self.total / 1e6, speed))
                sys.stdout.flush()
        elif percent // 10 != self.shown // 10:
            print("    %3d%%  %5.1f / %5.1f MB" % (percent, self.done / 1e6, self.total / 1e6), flush=True)
        self.shown = percent

    def finish(self):
        if self.tty:
            sys.stdout.write("\n")


def download(url, destination, md5, attempts=4, backoff=2.0, timeout=30):
    """Download to `destination` + '.part' (resuming it with an HTTP Range request), verify, rename."""
    part = destination + ".part"
    last_error = None
    for attempt in range(1, attempts + 1):
        have = os.path.getsize(part) if os.path.exists(part) else 0
        request = urllib.request.Request(url, headers={"User-Agent": "neural-style-installer/%s" % VERSION})
        if have:
            request.add_header("Range", "bytes=%d-" % have)
            out.detail("resuming at %.1f MB" % (have / 1e6))
        try:
            try:
                response = urllib.request.urlopen(request, timeout=timeout)
            except urllib.error.HTTPError as error:
                if error.code != 416 or not have:
                    raise
                response = None    # 416: nothing left to fetch, the part file is complete
            if response is not None:
                with response:
                    resumed = have and response.status == 206
                    if have and not resumed:
                        out.detail("the server ignored the resume request: starting over")
                    length = int(response.headers.get("Content-Length") or 0)
                    progress = Progress((have if resumed else 0) + length, have if resumed else 0)
                    with open(part, "ab" if resumed else "wb") as f:
                        for block in iter(lambda: response.read(1 << 16), b""):
                            f.write(block)
                            progress.advance(len(block))
                    progress.finish()
                    if length and progress.done < progress.total:
                        raise OSError("connection closed after %.1f of %.1f MB" % (progress.done / 1e6,
                                                                                 progress.total / 1e6))
            actual = md5_of(part)
            if actual == md5:
                os.replace(part, destination)
                return
            os.remove(part)
            last_error = "the downloaded file has md5 %s, expected %s" % (actual, md5)
        except (urllib.error.URLError, http.client.HTTPException, OSError, socket.timeout, ValueError) as error:
            last_error = getattr(error, "reason", None) or error
        out.warn("attempt %d of %d failed: %s" % (attempt, attempts, last_error))
        if attempt < attempts:
            time.sleep(backoff * attempt)
    raise InstallError(
        "could not download the VGG-19 weights (%s). Do it by hand: open %s in a browser (on any machine), "
        "check that its md5 is %s, then run: python3 installer.py --weights FILE (FILE: where you saved it)"
        % (last_error, url, md5))


def install_weights(args, manifest):
    destination = paths.default_weights_path()
    out.step("VGG-19 weights -> %s" % destination)
    make_dirs(os.path.dirname(destination), manifest)
    record = manifest.find("file", destination)
    if args.weights:
        source = os.path.abspath(args.weights)
        if not os.path.isfile(source):
            raise InstallError("--weights %s: no such file" % args.weights)
        actual = md5_of(source)
        if args.no_verify:
            out.loud(["--no-verify: installing %s WITHOUT checking it is the Keras VGG-19 file." % source,
                      "This is meant for test files only. Its md5 is %s (Keras' file: %s)." % (actual, WEIGHTS_MD5),
                      "Results will be meaningless unless this really is the VGG-19 notop weights file."])
        elif actual != WEIGHTS_MD5:
            raise InstallError("--weights %s: md5 is %s, but Keras' VGG-19 notop file has %s: it is a different or "
                               "damaged file (use --no-verify only for test files)" % (source, actual, WEIGHTS_MD5))
        if not is_hdf5(source):
            raise InstallError("--weights %s is not an HDF5 file (the Keras .h5 weights format)" % source)
        if os.path.abspath(destination) != source:
            temp = destination + ".copy"
            shutil.copyfile(source, temp)
            os.replace(temp, destination)
        manifest.add("file", destination, what="weights", md5=actual, verified=actual == WEIGHTS_MD5)
        out.detail("installed from %s (md5 %s, %s)" % (source, actual,
                   "verified" if actual == WEIGHTS_MD5 else "NOT verified"))
    elif os.path.exists(destination) and md5_of(destination) == WEIGHTS_MD5:
        out.detail("already there and verified (md5 %s)" % WEIGHTS_MD5)
        if record:
            record.update(md5=WEIGHTS_MD5, verified=True)
    else:
        if os.path.exists(destination):
            out.detail("the file there is not the Keras file (md5 differs): downloading it again")
        out.detail("downloading %s" % args.weights_url)
        manifest.add("file", destination + ".part", what="partial download")
        manifest.save()
        download(args.weights_url, destination, WEIGHTS_MD5)
        manifest.remove("file", destination + ".part")
        manifest.add("file", destination, what="weights", md5=WEIGHTS_MD5, verified=True)
        out.detail("downloaded and verified (md5 %s)" % WEIGHTS_MD5)
    manifest.save()
    out.remember("VGG-19 weights", destination)
    return destination
