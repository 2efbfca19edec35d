"""Files and folders genrenet writes get the user's umask: an export is readable by a TF Serving process running
as another user, and a umask of 077 keeps everything private."""
import os
import stat

import pytest

from genrenet.run import atomic_path, staging_dir, write_json


@pytest.fixture
def mask():
    def set_mask(value):
        os.umask(value)
    old = os.umask(0o022)
    yield set_mask
    os.umask(old)


def _modes(root):
    for folder, dirs, files in os.walk(root):
        yield folder, stat.S_IMODE(os.stat(folder).st_mode)
        for name in files:
            path = os.path.join(folder, name)
            yield path, stat.S_IMODE(os.stat(path).st_mode)


def test_an_export_is_readable_by_group_and_others_under_umask_022(tiny_run, tmp_path, mask):
    from genrenet.serve.export import export

    mask(0o022)
    version = export(str(tiny_run), str(tmp_path / "export"), verbose=0)
    modes = dict(_modes(version))
    unreadable = {p: oct(m) for p, m in modes.items() if m & 0o044 != 0o044}
    assert len(modes) > 3 and not unreadable
    assert stat.S_IMODE(os.stat(version).st_mode) == 0o755


def test_run_files_follow_the_umask(tmp_path, mask):
    mask(0o022)
    write_json(tmp_path / "a.json", {"x": 1})
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644
    assert stat.S_IMODE(os.stat(staging_dir(tmp_path, ".s-")).st_mode) == 0o755
    mask(0o077)
    with atomic_path(tmp_path / "b.txt") as tmp:
        with open(tmp, "w") as f:
            f.write("private")
    assert stat.S_IMODE(os.stat(tmp_path / "b.txt").st_mode) == 0o600
