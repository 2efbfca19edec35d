"""The README's commands are the ones CI and users run."""
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _quickstart_commands():
    text = (REPO / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_has_exactly_two_commands_and_ci_runs_the_test_command_verbatim():
    commands = _quickstart_commands()
    assert len(commands) == 2
    demo, tests = commands
    assert demo.endswith("genrenet demo") and "python3 -m venv" in demo
    assert tests.endswith("python -m pytest") and "python3 -m venv" in tests
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert tests in ci_lines


def test_every_registered_model_is_in_the_readme_table():
    import genrenet

    text = (REPO / "README.md").read_text()
    for name in genrenet.list_models():
        assert f"| `{name}` |" in text, name
