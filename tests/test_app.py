"""The Gradio app: /classify agrees with predict, bad files give a message and the app keeps serving, the batch
tab's table and CSV, the command line, and the page itself in headless Chromium."""
import csv
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, write_tone
from genrenet import predict

ARTIFACTS = Path(os.environ.get("GENRENET_TEST_ARTIFACTS", REPO / "test-artifacts"))
UPLOAD_LIMIT = "4mb"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _needs_gradio():
    pytest.importorskip("gradio", reason="the app needs the [app] extra: pip install -e '.[app]'")
    pytest.importorskip("gradio_client", reason="the app tests need gradio_client (the [app] extra)")


@pytest.fixture(scope="module")
def app(tiny_run):
    """The app on a free loopback port, stopped after the module."""
    _needs_gradio()
    from genrenet.serve.app import serve

    demo = serve(str(tiny_run), port=_free_port(), block=False, max_file_size=UPLOAD_LIMIT)
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def client(app):
    from gradio_client import Client

    return Client(app.local_url, verbose=False)


@pytest.fixture
def song(tmp_path):
    return write_tone(tmp_path / "song.flac", seconds=8.0, sr=44100, freq=523.0, channels=2)


def _classify(client, path):
    from gradio_client import handle_file

    return client.predict(handle_file(str(path)), api_name="/classify")


def test_app_serves_on_loopback_only(app):
    assert app.server_name == "127.0.0.1"
    assert app.local_url.startswith("http://127.0.0.1:")


def test_classify_endpoint_matches_predict(app, client, tiny_run, song):
    top, result = _classify(client, song)
    expected = predict(str(tiny_run), [song], verbose=0)[0]
    assert result["label"] == expected["label"] == top["label"]
    assert result["file"] == "song.flac"
    assert result["windows"] == expected["windows"]
    assert set(result["probabilities"]) == set(expected["probabilities"])
    for genre, p in expected["probabilities"].items():
        assert abs(result["probabilities"][genre] - p) <= 1e-5
    assert [c["label"] for c in top["confidences"]] == [label for label, _ in expected["top"]]
    np.testing.assert_allclose([c["confidence"] for c in top["confidences"]], [p for _, p in expected["top"]],
                               atol=1e-5)


def test_a_song_goes_through_the_model_once_for_its_genres_and_timeline(tiny_run, song, tmp_path):
    _needs_gradio()
    from genrenet import Classifier
    from genrenet.serve.app import make_handlers

    predictor = Classifier.from_preset(str(tiny_run))
    windows_seen = []
    forward = predictor.forward
    predictor.forward = lambda w: windows_seen.append(len(w)) or forward(w)
    classify, timeline, _, _ = make_handlers(predictor, 3, str(tmp_path))
    top, result = classify(str(song))
    assert sum(windows_seen) == result["windows"] and top
    assert timeline(str(song)) is not None
    assert sum(windows_seen) == result["windows"]  # the timeline drew the windows classify computed
    timeline(str(song))  # drawn again (no classify before it): the model runs for it
    assert sum(windows_seen) == 2 * result["windows"]


def test_bad_file_gives_its_reason_and_the_app_keeps_serving(client, song, tmp_path):
    from gradio_client.exceptions import AppError

    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio")
    with pytest.raises(AppError) as err:
        _classify(client, corrupt)
    message = str(err.value)
    assert message.startswith("broken.wav: truncated or damaged") and "\n" not in message
    assert "/tmp" not in message and "gradio" not in message  # the user's file name, not the upload path
    top, result = _classify(client, song)
    assert result["label"] == top["label"]


def test_upload_over_the_size_limit_is_refused(client, tmp_path):
    big = write_tone(tmp_path / "long.wav", seconds=60.0, subtype="FLOAT")  # 5.3 MB > UPLOAD_LIMIT
    assert big.stat().st_size > 4 * 1024 * 1024
    with pytest.raises(Exception, match="(?i)size|large|limit"):
        _classify(client, big)


def test_batch_endpoint_gives_a_table_and_csv(client, tiny_run, song, tmp_path):
    from gradio_client import handle_file

    other = write_tone(tmp_path / "other.wav", seconds=4.0, freq=110.0)
    corrupt = tmp_path / "broken.ogg"
    corrupt.write_bytes(b"OggS not really")
    table, csv_path = client.predict([handle_file(str(p)) for p in (song, other, corrupt)],
                                     api_name="/classify_batch")
    expected = predict(str(tiny_run), [song, other], verbose=0)
    labels = list(expected[0]["probabilities"])
    assert table["headers"] == ["file", "label", *labels, "windows", "error"]
    rows = table["data"]
    assert [r[0] for r in rows] == ["song.flac", "other.wav", "broken.ogg"]
    for row, exp in zip(rows, expected):
        assert row[1] == exp["label"] and row[-1] == ""
        np.testing.assert_allclose(row[2:2 + len(labels)], [exp["probabilities"][g] for g in labels], atol=1e-5)
    assert rows[2][1] == "" and rows[2][-1].startswith("broken.ogg: cannot decode")
    with open(csv_path, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert lines[0] == table["headers"] and [r[0] for r in lines[1:]] == ["song.flac", "other.wav", "broken.ogg"]


def test_without_a_model_source_the_default_preset_is_used_and_said():
    from genrenet.infer.source import default_source
    from genrenet.presets import DEFAULT_PRESET

    source, note = default_source(None)
    assert source == DEFAULT_PRESET and f"using the default preset {DEFAULT_PRESET}" in note
    assert default_source("runs/x") == ("runs/x", None)


def test_the_page_calls_a_preset_a_preset_and_a_run_a_run(tiny_run, preset_cache):
    from genrenet.infer.classifier import Classifier
    from genrenet.presets import DEFAULT_PRESET
    from genrenet.serve.app import model_summary

    preset = model_summary(Classifier.from_preset(DEFAULT_PRESET))
    assert preset.startswith(f"Model `{DEFAULT_PRESET}` (preset): ") and "(run)" not in preset
    assert model_summary(Classifier.from_preset(str(tiny_run))).startswith("Model `tiny` (run): ")


def _wait_for_http(url, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"genrenet app exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_cli_serves_the_page_until_stopped(tiny_run):
    _needs_gradio()
    port = _free_port()
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen([sys.executable, "-m", "genrenet", "app", str(tiny_run), "--port", str(port)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        page = _wait_for_http(f"http://127.0.0.1:{port}/", proc)
        assert "genrenet" in page
        info = _wait_for_http(f"http://127.0.0.1:{port}/gradio_api/info", proc)
        assert '"/classify"' in info
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# --- the page in a real headless browser -------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                                else None)


@pytest.fixture
def browser():
    """Headless Chromium through Selenium with the system's chromedriver (Selenium Manager never runs)."""
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("needs Debian's chromium and chromium-driver: apt-get install -y chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install selenium")
    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1280,1500", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps", "--no-first-run", "--disable-extensions",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"):  # a beeping microphone
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _browser_song(tmp_path):
    """A real GTZAN clip when ../shared is there (never copied into the repo), else a synthetic tone."""
    clips = sorted((REPO.parent / "shared" / "data" / "gtzan_dev" / "jazz").glob("*.wav"))
    return clips[0] if clips else write_tone(tmp_path / "tone.wav", seconds=9.0, freq=440.0)


def test_page_shows_label_and_timeline_in_a_browser(app, browser, tiny_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    song = _browser_song(tmp_path)
    expected = predict(str(tiny_run), [song], verbose=0)[0]["label"]
    wait = WebDriverWait(browser, 90)
    browser.get(app.local_url)
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#song input[type=file]")))
    upload.send_keys(str(song))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#top-genres"), expected))
    image = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#genre-timeline img")))
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    assert image.size["width"] > 400 and image.size["height"] > 200
    browser.execute_script("arguments[0].scrollIntoView({block: 'end'})", image)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "app-song.png"
    browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 20_000
    lines = [line.strip() for line in browser.find_element(By.CSS_SELECTOR, "#top-genres").text.splitlines()]
    assert lines[lines.index("Top genres") + 1] == expected  # the headline under the label is predict's label


def test_page_shows_why_a_file_is_refused_then_classifies_the_next(app, browser, tiny_run, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio")
    wait = WebDriverWait(browser, 90)
    browser.get(app.local_url)
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#song input[type=file]")))
    upload.send_keys(str(corrupt))
    reason = "broken.wav: truncated or damaged"
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#song-error"), reason))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "app-error.png"))
    time.sleep(12)  # longer than the pop-up stays: the reason stays beside the song
    assert reason in browser.find_element(By.CSS_SELECTOR, "#song-error").text
    song = write_tone(tmp_path / "tone.wav", seconds=6.0, freq=440.0)
    expected = predict(str(tiny_run), [song], verbose=0)[0]["label"]
    browser.find_element(By.CSS_SELECTOR, "#song button[aria-label='Clear']").click()
    upload = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#song input[type=file]")))
    upload.send_keys(str(song))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "#top-genres"), expected))
    assert browser.find_element(By.CSS_SELECTOR, "#song-error").text.strip() == ""


def _click_button(browser, wait, text=None, label=None):
    from selenium.webdriver.common.by import By

    def find(driver):
        for button in driver.find_elements(By.CSS_SELECTOR, "#song button"):
            if button.is_displayed() and ((text and button.text.strip() == text)
                                          or (label and button.get_attribute("aria-label") == label)):
                return button
        return False

    wait.until(find).click()


def test_page_classifies_a_recording_from_the_microphone(app, browser, tiny_run):
    import json

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 60)
    browser.get(app.local_url)
    _click_button(browser, wait, label="Record audio")
    _click_button(browser, wait, text="Record")
    time.sleep(4)  # Chromium's fake microphone beeps: more than one 3-s window of it
    _click_button(browser, wait, text="Stop")
    image = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#genre-timeline img")))
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
    lines = [line.strip() for line in browser.find_element(By.CSS_SELECTOR, "#top-genres").text.splitlines()]
    assert lines[lines.index("Top genres") + 1] in json.loads((tiny_run / "labels.json").read_text())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(ARTIFACTS / "app-recording.png"))
