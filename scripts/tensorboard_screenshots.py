"""Screenshots of TensorBoard's dashboards over a log folder, as a person opening it sees them.

    python scripts/tensorboard_screenshots.py [LOGDIR] [--out docs/images] [--width 1600]

Starts TensorBoard on 127.0.0.1 over LOGDIR (default logs/) with the flags `keras-zoo train`
prints, waits until it serves the run's images, and renders the Scalars dashboard and the
Images dashboard (one page per tag group given by --images) with headless Chromium into
OUT/tensorboard_<page>.png: the screenshots in the README. Needs Chromium (Debian:
`apt-get install chromium`); without it, it says so and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
PAGES = {  # file name -> the dashboard's address, after http://host:port/
    # Keras' loss and accuracy come first; precision and recall opened above them
    "scalars": "#scalars&tagFilter=%5E(precision%7Crecall)%24",
}
# the Images dashboard's tag groups, a page each (the filters' page shows the confusion
# matrix below them)
IMAGE_GROUPS = ("inputs", "feature_maps", "grad_cam", "filters")


def find_browser() -> str | None:
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_images(base: str, server: subprocess.Popen, seconds: float = 120) -> dict:
    """The image tags the server lists once it lists any; RuntimeError if it never does."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("tensorboard exited before serving the logs")
        try:
            with urllib.request.urlopen(f"{base}/data/plugin/images/tags", timeout=5) as r:
                tags = json.loads(r.read())
            if any(tags.values()):
                return tags
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"tensorboard served no images in {seconds:.0f} s")


def screenshot(browser: str, url: str, path: str, width: int, height: int) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "--virtual-time-budget=20000",
                f"--screenshot={path}",
                url,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=180,
        )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("logdir", nargs="?", default="logs")
    parser.add_argument("--out", default=os.path.join("docs", "images"))
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1200)
    parser.add_argument(
        "--images",
        nargs="+",
        default=list(IMAGE_GROUPS),
        metavar="GROUP",
        help="tag groups of the Images dashboard to render, one page each",
    )
    args = parser.parse_args(argv)
    if not os.path.isdir(args.logdir):
        print(
            f"logdir {args.logdir!r}: no such folder (run bash scripts/run.sh first)",
            file=sys.stderr,
        )
        return 2
    browser = find_browser()
    if browser is None:
        print(
            "no Chromium found (tried " + ", ".join(BROWSERS) + "); on Debian or Ubuntu: "
            "sudo apt-get install chromium",
            file=sys.stderr,
        )
        return 2
    from keras_zoo.commands.train import TENSORBOARD_FLAGS

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorboard.main",
            "--logdir",
            args.logdir,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *TENSORBOARD_FLAGS.split(),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    try:
        wait_for_images(base, server)
        os.makedirs(args.out, exist_ok=True)
        pages = dict(PAGES)
        for group in args.images:
            pages[f"images_{group}"] = "#images&" + urllib.parse.urlencode(
                {"tagFilter": f"^{group}"}
            )
        for name, fragment in pages.items():
            path = os.path.join(args.out, f"tensorboard_{name}.png")
            screenshot(browser, f"{base}/{fragment}", path, args.width, args.height)
            print(f"wrote {path}")
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
