"""How the command-line tools end and warn (klarna_pd/cli.py); SIGTERM itself: tests/data/test_synth.py."""

import pytest

from klarna_pd import cli
from klarna_pd.data.files import DataWarning

pytestmark = pytest.mark.unit


def test_the_projects_warnings_are_one_line_and_others_keep_pythons_format(capsys, monkeypatch):
    """The extra-column warning printed in Python's format, with a source line of ours after it."""
    passed_on = []
    monkeypatch.setattr(cli, "_show_default", lambda *args: passed_on.append(args[:4]))
    cli._show(DataWarning("d.csv: ignoring 1 column(s) the spec does not name: ['note']"), DataWarning,
              "/venv/klarna_pd/batch/local.py", 148)
    cli._show(DeprecationWarning("old"), DeprecationWarning, "/venv/lib/thing.py", 7)
    said = "warning: d.csv: ignoring 1 column(s) the spec does not name: ['note']\n"
    assert capsys.readouterr().err == said
    passed = [(str(m), c, f, n) for m, c, f, n in passed_on]
    assert passed == [("old", DeprecationWarning, "/venv/lib/thing.py", 7)]


def test_ctrl_c_is_one_line_and_exit_130(capsys):
    def interrupted() -> int:
        raise KeyboardInterrupt

    with pytest.raises(SystemExit) as exit_:
        cli.run(interrupted)
    assert exit_.value.code == 130 and capsys.readouterr().err == "interrupted\n"


@pytest.mark.parametrize("tool, argv, flag", [
    ("train", ["--fold", "3"], "--fold"),
    ("klarna_pd.batch.__main__", ["--model", "m", "--input", "a.csv", "--output", "b.csv", "--rej", "r.csv"], "--rej"),
    ("klarna_pd.synth.__main__", ["--rows", "10", "--out", "d.csv", "--se", "1"], "--se"),
    ("klarna_pd.store.__main__", ["pull", "s3://bucket/m/klarna-pd/v1", "--de", "x"], "--de"),
    ("klarna_pd.cluster.__main__", ["wait", "--release", "r", "--timeo", "5"], "--timeo"),
])
def test_every_tool_takes_whole_flag_names_only(tool, argv, flag, capsys):
    """argparse took any unambiguous prefix (``--fold 3`` ran with --folds 3): a script using one
    would break, or change meaning, once a flag sharing the prefix is added."""
    import importlib

    from tests.helpers.paths import ROOT

    if tool == "train":
        import sys

        sys.path.insert(0, str(ROOT))
        try:
            parser = importlib.import_module("train").build_parser()
        finally:
            sys.path.remove(str(ROOT))
    else:
        parser = importlib.import_module(tool).build_parser()
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(argv)
    assert exit_.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err
