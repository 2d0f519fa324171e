"""The app in a real browser: Debian's chromium driven by Playwright (never `playwright install`).

Upload, type labels, classify; read the plotly figure, the segments table and the attribute
phrases from the page; change a label and check the video was not encoded again; upload a
text file renamed .mp4 and check a readable error appears. Screenshots go to
artifacts/screenshots/.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from test_app import serve_app

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
TIMEOUT_MS = 30_000
SEGMENT_ROWS = "#segments [role=row][data-index]"  # gradio 6 dataframe body rows
DISCOVERED_ROWS = "#discovered [role=row][data-index]"

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with serve_app(tmp_path_factory.mktemp("browser-app")) as running:
        yield running


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(TIMEOUT_MS)
        tab.goto(served.url)
        tab.wait_for_selector("#classify")
        yield tab
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def trace_names(page) -> list[str]:
    return page.evaluate("document.querySelector('#timeline .js-plotly-plot').data.map(trace => trace.name)")


def upload(page, path: Path) -> None:
    page.set_input_files("#video input[type=file]", str(path))


def test_classify_then_update_labels_without_encoding_again(served, page):
    upload(page, served.clip)
    page.wait_for_selector("#video video")
    page.fill("#labels textarea", "red square, green ball, moving right")
    page.fill("#threshold input[type=number]", "0")  # every window is a segment: the table has rows
    page.keyboard.press("Enter")
    page.click("#classify")
    page.wait_for_function(
        "document.querySelector('#timeline .js-plotly-plot')?.data?.length === 3", timeout=TIMEOUT_MS
    )
    assert trace_names(page) == ["red square", "green ball", "moving right"]
    page.wait_for_function(f"document.querySelectorAll('{SEGMENT_ROWS}').length > 0")
    rows = [" ".join(row.split()) for row in page.locator(SEGMENT_ROWS).all_inner_texts()]
    # threshold 0: all 3 windows of each label merge into one 0-6 s segment
    assert sorted(row.split(" 0 6 ")[0] for row in rows) == ["green ball", "moving right", "red square"]
    _, phrases = served.classifier.labels.embeddings(["red square", "green ball", "moving right"])
    attributes = page.inner_text("#attributes")
    assert all(phrase in attributes for label in phrases for phrase in phrases[label])
    assert "Encoded 3 windows" in page.inner_text("#status")
    shot(page, "01-classified")

    encodes = len(served.encodes)
    page.fill("#labels textarea", "red square, green ball, blinking")
    page.click("#update")
    page.wait_for_function(
        "document.querySelector('#timeline .js-plotly-plot')?.data?.some(trace => trace.name === 'blinking')"
    )
    assert trace_names(page) == ["red square", "green ball", "blinking"]
    assert len(served.encodes) == encodes  # re-scored only
    page.wait_for_selector("#status :text('not re-encoded')")
    shot(page, "02-updated-labels")


def test_a_text_file_renamed_mp4_shows_a_readable_error(served, page):
    bad = served.folder / "notes.mp4"
    bad.write_text("this is not a video\n" * 100)
    page.goto(served.url)  # a new session with an empty video input
    upload(page, bad)
    page.fill("#labels textarea", "dog, cat")
    page.wait_for_timeout(500)  # let the upload finish before asking for a classification
    page.click("#classify")
    error = page.get_by_text("not a video file").first
    error.wait_for()
    assert "notes.mp4" in error.inner_text()
    shot(page, "03-bad-file")


def test_example_discover_and_label_file(served, page):
    from examples.clips import EXAMPLE_CLIPS

    page.goto(served.url)
    first_labels = EXAMPLE_CLIPS[0][1]
    page.get_by_text(first_labels).first.click()  # a lazily cached example: computed at first use
    page.wait_for_function("document.querySelector('#timeline .js-plotly-plot')?.data?.length === 4")
    assert trace_names(page) == [label.strip() for label in first_labels.split(",")]
    assert "cached example" in page.inner_text("#status")

    page.get_by_text("Discover labels from a vocabulary").click()
    page.locator("#discover-vocabulary input").fill("COCO")
    page.get_by_role("option", name="COCO objects (80)").click()
    page.click("#discover")
    page.wait_for_selector("#status :text('Scored 80 labels')")
    suggested = [
        " ".join(row.split()).rsplit(" ", 1)[0] for row in page.locator(DISCOVERED_ROWS).all_inner_texts()
    ]
    assert len(suggested) == 10
    page.click("#use-suggestions")
    page.wait_for_function("document.querySelector('#timeline .js-plotly-plot')?.data?.length === 10")
    assert trace_names(page) == suggested
    shot(page, "04-discover")

    label_file = served.folder / "labels.txt"
    label_file.write_text("# my labels\nred ball\nmoving right, blue square\n", encoding="utf-8")
    with page.expect_file_chooser() as chooser:
        page.get_by_text("Load labels from a text file").click()
    chooser.value.set_files(str(label_file))
    page.wait_for_function(
        "document.querySelector('#labels textarea').value === 'red ball\\nmoving right\\nblue square'"
    )
