"""The page in a real browser: Debian's chromium, driven by Playwright, on
the tiny SD1.5 family. Upload an image with its caption, train a few
iterations while progress and the loss curve update (a second tab's Start
into the same run is refused), generate an image, run the quick evaluation
and read its table. Screenshots go to the test's
tmp dir and to outputs/webui_screenshots/."""

import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from ..conftest import REPO
from .conftest import IMAGES

pytestmark = pytest.mark.slow
pytest.importorskip(
    'gradio', reason='the webui extra is not installed (bash tools/install_webui.sh)'
)
sync_api = pytest.importorskip(
    'playwright.sync_api',
    reason='Playwright is not installed (bash tools/install_webui.sh --browser)',
)
CHROMIUM = (
    os.environ.get('CHROMIUM')
    or shutil.which('chromium')
    or shutil.which('chromium-browser')
)
if CHROMIUM is None:
    pytest.skip(
        'no chromium (apt-get install chromium, or bash '
        'tools/install_webui.sh --browser as root)',
        allow_module_level=True,
    )

CAT = osp.join(IMAGES, 'cat.jpg')
SHOTS = osp.join(REPO, 'outputs', 'webui_screenshots')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """``python tools/webui.py`` on a fresh workspace; its URL and folder."""
    port, workspace = free_port(), tmp_path / 'workspace'
    log_path = tmp_path / 'server.log'
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                osp.join(REPO, 'tools', 'webui.py'),
                '--workspace',
                str(workspace),
                '--port',
                str(port),
            ],
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ, HF_HUB_OFFLINE='1'),
        )
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.monotonic() < deadline, 'the page did not come up'
        try:
            urllib.request.urlopen(url, timeout=5)
            break
        except OSError:
            time.sleep(1)
    yield url, workspace, log_path
    proc.terminate()
    proc.wait(timeout=30)
    from diffengine_ipa.webui.train_process import TrainingRuns
    from diffengine_ipa.webui.workspace import Workspace

    ws = Workspace(str(workspace))
    for run in ws.runs():  # a training a failed test left running
        TrainingRuns().stop(ws, run)


def shot(target, name: str, tmp_path) -> str:
    """A screenshot of the page (or one element) as a test artifact."""
    path = tmp_path / 'screenshots' / f'{name}.png'
    path.parent.mkdir(exist_ok=True)
    if hasattr(target, 'screenshot') and hasattr(target, 'goto'):
        target.screenshot(path=str(path), full_page=True)
    else:
        target.screenshot(path=str(path))
    os.makedirs(SHOTS, exist_ok=True)
    shutil.copy(path, SHOTS)
    return str(path)


def test_upload_train_generate_evaluate(server, tmp_path):
    url, workspace, log_path = server
    assert f'Running on local URL:  {url}' in log_path.read_text()
    start = time.monotonic()
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1280, 'height': 900})
        page.set_default_timeout(60_000)
        # Nothing but the page itself: no fonts, analytics or CDNs.
        page.route(
            '**/*',
            lambda route: (
                route.continue_()
                if route.request.url.startswith(url)
                else route.abort()
            ),
        )
        page.goto(url)

        # Data: one image and its caption, checked.
        page.set_input_files('#upload-images input[type=file]', CAT)
        page.wait_for_selector('#upload-images :text("cat.jpg")')
        page.fill('#upload-caption textarea', 'a close-up of a tabby cat')
        page.click('#add-images')
        page.wait_for_selector('#dataset-summary :text("1 usable")')
        assert 'images/cat.jpg' in page.inner_text('#captions')
        shot(page, '1_data', tmp_path)

        # Train: 3 epochs of the one image (3 iterations), samples at the end.
        page.get_by_role('tab', name='Train').click()
        page.fill('#epochs input', '3')
        page.fill('#sample-every input', '3')
        empty_curve = shot(page.locator('#loss-curve'), 'loss_before', tmp_path)
        other = browser.new_page()  # a second tab on the same run name
        other.goto(url)
        other.get_by_role('tab', name='Train').click()
        page.click('#start')
        page.wait_for_function(  # after the tiny models are written
            "document.querySelector('#train-message textarea').value"
            ".includes('started runs/my_adapter')",
            timeout=300_000,
        )
        other.click('#start')  # while the first tab's training runs
        refused = 'a training is already running in this work dir'
        other.get_by_text(refused).first.wait_for()
        other.wait_for_selector('#train-status :text("runs/my_adapter")')
        shot(other, '2_second_tab', tmp_path)
        other.close()
        seen = []
        deadline = time.monotonic() + 600
        while 'finished' not in (status := page.inner_text('#train-status')):
            assert 'failed' not in status, page.inner_text('#train-log')
            assert time.monotonic() < deadline, seen
            text = page.inner_text('#train-progress .progress-text')
            if not seen or seen[-1] != (status, text):
                seen.append((status, text))
            page.wait_for_timeout(300)
        page.wait_for_selector('#train-progress :text("iteration 3 / 3 (100 %)")')
        assert any('running' in s and 'iteration' in t for s, t in seen), seen
        assert len({t for _, t in seen}) >= 2, seen  # the bar moved
        page.wait_for_selector('#train-samples img')
        assert page.locator('#loss-curve canvas, #loss-curve svg').count() > 0
        curve = shot(page.locator('#loss-curve'), 'loss_after', tmp_path)
        assert open(curve, 'rb').read() != open(empty_curve, 'rb').read()
        shot(page, '2_train', tmp_path)

        # Generate: the run's checkpoint, one reference, 2 steps.
        page.get_by_role('tab', name='Generate').click()
        page.wait_for_function(
            "document.querySelector('#gen-adapter input').value"
            ".includes('runs/my_adapter/iter_3.pth')"
        )
        page.set_input_files('#references input[type=file]', CAT)
        page.wait_for_selector('#references :text("cat.jpg")')
        page.fill('#prompt textarea', 'a cat on a sofa')
        page.fill('#gen-steps input', '2')
        page.click('#generate')
        page.wait_for_selector('#gen-gallery img', timeout=300_000)
        assert len(os.listdir(workspace / 'outputs' / 'generate')) == 1
        shot(page, '3_generate', tmp_path)

        # Evaluate: the quick evaluation's table.
        page.get_by_role('tab', name='Evaluate').click()
        page.click('#evaluate')
        page.wait_for_selector('#eval-table :text("overall")', timeout=600_000)
        table = page.inner_text('#eval-table')
        assert all(case in table for case in ('cat', 'mountains', 'rocket'))
        shot(page, '4_evaluate', tmp_path)
        browser.close()
    print(f'browser test: {time.monotonic() - start:.0f} s after the page came up')
