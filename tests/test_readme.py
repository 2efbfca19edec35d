"""The README is a front page whose commands are the ones CI and users run; user-facing text speaks of the software."""
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


def test_readme_is_a_front_page_of_at_most_250_lines():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move details to docs/"


# Phrases that speak of how the software was made rather than of the software. Assembled from parts so that
# this file does not match its own pattern.
_HISTORY = re.compile("|".join([
    "is" + r"sue ?#?[0-9]", "the is" + "sue", "this ses" + "sion", "last ses" + "sion", "earlier mach" + "ine",
    "newer mach" + "ine", "this " + "VM", "founding art" + "icle", "before the (three|two|last) chan" + "ges",
]), re.IGNORECASE)
_READ_BY_USERS = ("README.md", "docs", "notebooks", "tests", "benchmarks", "genrenet")
_TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".cfg", ".yml", ".yaml", ".json", ".csv", ".tsv"}


def _files_read_by_users():
    for name in _READ_BY_USERS:
        path = REPO / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        for file in candidates:
            if file.is_file() and file.suffix in _TEXT_SUFFIXES and "__pycache__" not in file.parts:
                yield file


def test_docs_code_and_tests_speak_of_the_software_not_of_its_history():
    hits = []
    for file in _files_read_by_users():
        for number, line in enumerate(file.read_text(errors="replace").splitlines(), 1):
            if _HISTORY.search(line):
                hits.append(f"{file.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert not hits, "history belongs in CHANGELOG.md:\n" + "\n".join(hits)
