"""Download helper against a local HTTP server on 127.0.0.1 (never the real hosts): resume, checksum, extract."""
import hashlib
import http.server
import io
import os
import threading
import zipfile

import pytest

from conftest import run_cli
from genrenet.data.download import DownloadError, download, fetch


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves ``server.files`` (name -> bytes), honouring ``Range: bytes=N-`` unless ``server.ranges`` is False."""

    def do_GET(self):  # noqa: N802
        data = self.server.files.get(self.path.lstrip("/"))
        self.server.log.append((self.path, self.headers.get("Range")))
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range")
        if rng and self.server.ranges:
            start = int(rng.split("=")[1].rstrip("-"))
            if start >= len(data):
                self.send_response(416)
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.files, httpd.log, httpd.ranges = {}, [], True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _url(server, name):
    return f"http://127.0.0.1:{server.server_address[1]}/{name}"


def test_download_verifies_extracts_and_is_idempotent(server, tmp_path):
    archive = _zip({"fma_metadata/tracks.csv": "x" * 5000, "fma_metadata/genres.csv": "y"})
    server.files["fma_metadata.zip"] = archive
    sha1 = hashlib.sha1(archive).hexdigest()
    spec = download("fma_metadata", str(tmp_path), urls=[_url(server, "fma_metadata.zip")],
                    checksum=("sha1", sha1), progress=False, verbose=False)
    assert spec == f"fma:{tmp_path}"
    assert (tmp_path / "fma_metadata" / "tracks.csv").read_text() == "x" * 5000
    assert not (tmp_path / "fma_metadata.zip.part").exists()
    n = len(server.log)
    download("fma_metadata", str(tmp_path), urls=[_url(server, "fma_metadata.zip")], checksum=("sha1", sha1),
             progress=False, verbose=False)
    assert len(server.log) == n  # nothing fetched again


def test_resume_after_a_truncated_partial_file(server, tmp_path):
    data = os.urandom(300_000)
    server.files["big.zip"] = data
    dest = tmp_path / "big.zip"
    (tmp_path / "big.zip.part").write_bytes(data[:123_456])  # an interrupted earlier download
    fetch(_url(server, "big.zip"), str(dest), checksum=("sha1", hashlib.sha1(data).hexdigest()), progress=False)
    assert dest.read_bytes() == data
    assert server.log[-1][1] == "bytes=123456-"  # only the rest was asked for


def test_a_server_without_range_support_restarts_cleanly(server, tmp_path):
    data = os.urandom(50_000)
    server.files["f.zip"], server.ranges = data, False
    (tmp_path / "f.zip.part").write_bytes(b"garbage-from-elsewhere")
    fetch(_url(server, "f.zip"), str(tmp_path / "f.zip"), checksum=("md5", hashlib.md5(data).hexdigest()),
          progress=False)
    assert (tmp_path / "f.zip").read_bytes() == data


def test_checksum_mismatch_is_an_error_and_nothing_is_extracted(server, tmp_path):
    server.files["fma_small.zip"] = _zip({"fma_small/000/000002.mp3": "not really"})
    with pytest.raises(DownloadError, match="checksum mismatch"):
        download("fma_small", str(tmp_path), urls=[_url(server, "fma_small.zip")], checksum=("sha1", "0" * 40),
                 progress=False, verbose=False)
    assert not (tmp_path / "fma_small").exists()
    assert (tmp_path / "fma_small.zip.bad").exists() and not (tmp_path / "fma_small.zip").exists()


def test_missing_file_and_unsafe_archive(server, tmp_path):
    with pytest.raises(DownloadError, match="every source failed.*404"):
        download("gtzan", str(tmp_path), urls=[_url(server, "nope.tar.gz")], progress=False, verbose=False)
    evil = _zip({"../escape.txt": "x"})
    server.files["genres.tar.gz"] = evil
    with pytest.raises(DownloadError, match="outside"):
        download("gtzan", str(tmp_path / "d"), urls=[_url(server, "genres.tar.gz")],
                 checksum=("md5", hashlib.md5(evil).hexdigest()), progress=False, verbose=False)
    assert not (tmp_path / "escape.txt").exists()


def test_cli_download_lists_the_datasets():
    r = run_cli("download", "--help")
    assert r.returncode == 0 and "gtzan" in r.stdout and "fma_medium" in r.stdout and "--dir" in r.stdout
