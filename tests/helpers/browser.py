"""A real headless browser (Debian's chromium) to look at rendered pages as a reader would.

``make test`` installs chromium first (the Makefile's ``browser`` prerequisite); run alone, the
tests install it the same way when they can (root and apt-get) and skip only when they cannot.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--hide-scrollbars",
)


def _which() -> str | None:
    return next((path for path in map(shutil.which, CANDIDATES) if path), None)


def find_or_install() -> tuple[str | None, str]:
    """The browser's path, installing Debian's chromium when it is missing and we can.

    Returns:
        ``(path, "")``, or ``(None, why)`` when there is no browser and it cannot be installed.
    """
    found = _which()
    if found:
        return found, ""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "chromium is not installed and this is not a root Debian system to install it on"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return None, f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-500:]}"
    found = _which()
    return (found, "") if found else (None, "apt-get installed chromium but no browser is on PATH")


def _run(browser: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run([browser, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{browser} {' '.join(args)} exited with {proc.returncode}: {proc.stderr[-2000:]}")
    return proc


def dump_dom(browser: str, page: Path) -> str:
    """The page's DOM after the browser parsed and laid it out (``--dump-dom``)."""
    return _run(browser, "--dump-dom", page.resolve().as_uri()).stdout


def screenshot(browser: str, page: Path, png: Path, width: int = 1100, height: int = 6000) -> tuple[int, int]:
    """Take a screenshot of ``page``; returns the PNG's width and height."""
    _run(browser, f"--window-size={width},{height}", f"--screenshot={png}", page.resolve().as_uri())
    head = png.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise RuntimeError(f"{png} is not a PNG")
    return struct.unpack(">II", head[16:24])


def print_pages(browser: str, page: Path, pdf: Path) -> int:
    """Print ``page`` to PDF (A4, the browser's default margins) and count the printed pages."""
    _run(browser, "--no-pdf-header-footer", f"--print-to-pdf={pdf}", page.resolve().as_uri())
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf.read_bytes()))


class Dom(HTMLParser):
    """What a reader sees: element counts, cell classes and the visible text."""

    _HIDDEN = {"head", "style", "script", "title"}

    def __init__(self, html: str) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}
        self.classes: list[str] = []
        self._hidden = 0
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.counts[tag] = self.counts.get(tag, 0) + 1
        self.classes += [v for k, v in attrs if k == "class" and v]
        if tag in self._HIDDEN:
            self._hidden += 1

    def handle_endtag(self, tag):
        if tag in self._HIDDEN:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden:
            self._text.append(data)

    @property
    def text(self) -> str:
        return " ".join(self._text)

    def count(self, tag: str) -> int:
        return self.counts.get(tag, 0)
