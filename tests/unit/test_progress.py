"""The progress line of long jobs (batch scoring, the synthetic data): in a log and on a terminal."""

import io

import pytest

from klarna_pd.progress import Progress

pytestmark = [pytest.mark.unit]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_its_first_update_after_a_while_and_a_finish_without_padding():
    """A short job in a CI log printed its last line twice: a 100 % update, then the finish padded
    to 80 columns with spaces."""
    log = io.StringIO()
    progress = Progress("batch", 6_000, stream=log, every=5.0)
    progress.update(3_000)
    progress.update(6_000)
    progress.finish(6_000)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("batch: 6,000 / 6,000 rows (100%), ") and not lines[0].endswith(" ")
    slow = Progress("batch", 6_000, stream=log, every=0.0)
    slow.update(3_000)
    assert log.getvalue().splitlines()[-1].startswith("batch: 3,000 / 6,000 rows (50%)")


def test_a_terminal_redraws_in_place():
    screen = _Terminal()
    progress = Progress("synth", 10, stream=screen)
    progress.update(5)
    progress.finish(10)
    first, last = screen.getvalue().split("\r")
    assert first.startswith("synth: 5 / 10 rows (50%)") and len(last.rstrip("\n")) >= 80


def test_an_error_after_a_terminal_update_starts_its_own_line():
    screen = _Terminal()
    progress = Progress("synth", 10, stream=screen)
    progress.update(5)
    progress.interrupt()
    print("error: disk full", file=screen)
    assert screen.getvalue().endswith("\r\nerror: disk full\n")
    quiet = io.StringIO()
    Progress("synth", 10, stream=quiet).interrupt()  # a log's lines end themselves
    assert quiet.getvalue() == ""
