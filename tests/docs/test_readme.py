"""Every command in README.md runs as written, in order, in a copy of the checkout.

Each fenced command block carries a marker on the line before it:

- ``<!-- readme-test: run -->``: run to completion (bash blocks with ``bash -euo pipefail``,
  Python blocks with the venv's Python); it must exit 0.
- ``<!-- readme-test: serve -->``: a server: started in the background (replacing the previous
  one) and waited for until ``/readyz`` answers 200.
- ``<!-- readme-test: skip: <reason> -->``: not run here, and says why.

The copy holds the checkout's files (tracked and new, as ``git ls-files`` lists them), the
checkout's venv (a link: the state after the set-up commands) and ``../shared`` (a link), with an
empty BentoML home. The one change to the text: port 3000 becomes a free port (``BENTOML_PORT``
for the server, ``localhost:<port>`` in the commands), so the test never meets another server.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..helpers.paths import ROOT, SHARED
from ..helpers.servers import free_port, stop_server

pytestmark = [pytest.mark.docs]

README = ROOT / "README.md"
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console", "python"}
_FENCE = re.compile(r"^```(\S*)\s*$")
_MARK = re.compile(r"^<!--\s*readme-test:\s*(run|serve|skip)\b(?::\s*(.*?))?\s*-->$")
# A program the venv provides, called without its .venv/bin/ path (fails in a fresh shell).
_BARE = re.compile(r"(?:^|[\s;&|(`])(python3?|pip3?|bentoml|pytest)\s")


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    code: str
    kind: str | None
    reason: str


def readme_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, with the marker on the line before each."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opened = _FENCE.match(lines[i])
        if not opened:
            i += 1
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        mark = _MARK.match(before)
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        blocks.append(Block(i + 1, opened.group(1), "\n".join(lines[i + 1:end]),
                            mark.group(1) if mark else None, (mark.group(2) or "") if mark else ""))
        i = end + 1
    return blocks


def _commands():
    return [b for b in readme_blocks(README.read_text(encoding="utf-8")) if b.language in COMMAND_LANGUAGES]


def test_every_command_block_says_whether_it_runs():
    blocks = _commands()
    assert len([b for b in blocks if b.kind in ("run", "serve")]) >= 6
    unmarked = [b.line for b in blocks if b.kind is None]
    assert not unmarked, f"README.md command blocks without a readme-test marker at lines {unmarked}"
    silent = [b.line for b in blocks if b.kind == "skip" and len(b.reason) < 10]
    assert not silent, f"skipped README.md blocks must say why (lines {silent})"


def test_commands_call_the_venv_by_path():
    bare = [
        (b.line, line.strip())
        for b in _commands() if b.language != "python"
        for line in b.code.splitlines()
        if _BARE.search(line.split("#", 1)[0])
    ]
    assert not bare, f"README.md commands that need an activated venv: {bare}"


def _copy_checkout(dest: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, (n.decode() for n in listed)):
        src = ROOT / name
        if src.is_file() and not src.is_symlink():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)  # keeps mtimes: make sees the venv as up to date
    (dest / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)


def _wait_ready(proc: subprocess.Popen, url: str, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"server not ready in {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.mark.slow
def test_readme_commands_run_as_written(tmp_path):
    if not SHARED.is_dir():
        pytest.skip("../shared is not beside the checkout (the README's UCI example reads it)")
    if not (ROOT / ".venv" / "bin" / "python").exists():
        pytest.skip("no .venv in the checkout: the README's commands run after the set-up commands")
    repo = tmp_path / "klarna-pd"
    _copy_checkout(repo)
    (tmp_path / "shared").symlink_to(SHARED, target_is_directory=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KLARNA_PD_")}
    env.update(BENTOML_HOME=str(tmp_path / "bentoml-home"), BENTOML_DO_NOT_TRACK="True", BENTOML_PORT=str(port))

    server, timings = None, []
    try:
        for block in _commands():
            if block.kind == "skip":
                continue
            code = block.code.replace("localhost:3000", f"localhost:{port}")
            started = time.perf_counter()
            if block.kind == "serve":
                stop_server(server, grace=30)
                log = tmp_path / f"serve-{block.line}.log"
                with open(log, "wb") as out:
                    server = subprocess.Popen(["bash", "-c", code], cwd=repo, env=env, stdout=out,
                                              stderr=subprocess.STDOUT, start_new_session=True)
                _wait_ready(server, f"http://127.0.0.1:{port}", log)
            else:
                cmd = [str(repo / ".venv/bin/python"), "-c", code] if block.language == "python" else \
                    ["bash", "-euo", "pipefail", "-c", code]
                proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=1800)
                assert proc.returncode == 0, (
                    f"README.md line {block.line} failed ({proc.returncode}):\n{code}\n"
                    f"--- stdout\n{proc.stdout[-3000:]}\n--- stderr\n{proc.stderr[-3000:]}")
            timings.append((block.line, block.kind, round(time.perf_counter() - started, 1)))
    finally:
        stop_server(server, grace=30)
        print("README blocks (line, kind, seconds):", timings)

    # What the README says those commands leave behind.
    import json

    klarna = json.loads((repo / "outputs/klarna/metrics.json").read_text())
    assert klarna["input"]["synthetic"] is True and klarna["model_tag"].startswith("klarna-pd:")
    assert klarna["input"]["path"] == "data/dataset.csv"
    uci = json.loads((repo / "outputs/uci_taiwan/metrics.json").read_text())
    assert uci["model_tag"].startswith("uci_taiwan-pd:") and uci["input"]["synthetic"] is False
    assert len((repo / "data/scores.csv").read_text().splitlines()) == 1001
    assert (repo / "data/dataset.csv.synthetic.json").exists()
