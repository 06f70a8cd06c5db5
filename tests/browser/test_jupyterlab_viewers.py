"""The course's viewers work in a real browser: JupyterLab in headless Chromium, driven by Playwright.

nbval runs the notebooks without a front end, so it cannot see a widget that fails to render, a
slider whose callback is never wired, or an image that never changes. This test does what a student
does: opens the notebook in JupyterLab, runs all cells, checks that the viewer's controls are drawn,
moves a slider / picks a dropdown option, and checks that the drawn image changes, with no error
output anywhere. Screenshots go to ``test-output/browser/<case>/`` (before.png, after.png, page.png).

Two cases:

* ``harness``: a tiny notebook this test writes itself (an IntSlider, a Dropdown and an Image whose
  PNG depends on them). It checks the machinery (server, browser, widget front end) on its own.
* ``course``: the course's viewer notebook ``COURSE_VIEWER_NOTEBOOK``, run in smoke mode
  (``DELTAZ_SMOKE=1``) from a temporary copy of ``notebooks/``; skipped while that notebook does not
  exist yet.

Run: ``pytest -m browser tests/browser -v`` (needs ``chromium`` on PATH and ``pip install playwright``).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT_DIR = ROOT / "test-output" / "browser"
COURSE_VIEWER_NOTEBOOK = "notebooks/07_evaluation.ipynb"

RUN_ALL_TIMEOUT_S = {"harness": 90, "course": 480}
IMAGE_CHANGE_TIMEOUT_S = 30
VIEWPORT = {"width": 1280, "height": 1600}  # tall enough for a whole viewer in one element screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(600)]


# -- the self-made harness notebook ------------------------------------------------------------------
HARNESS_CELLS = [
    '''import io
import os

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

SMOKE = os.environ.get("DELTAZ_SMOKE") == "1"
assert SMOKE, "the kernel must inherit DELTAZ_SMOKE=1 from JupyterLab"''',
    '''def render_png(k: int, cmap: str) -> bytes:
    """A 160x120 PNG of sin(k x) * cos(k y) in colour map ``cmap``."""
    y, x = np.mgrid[0:1:60j, 0:1:80j]
    fig = Figure(figsize=(1.6, 1.2), dpi=100)
    ax = fig.add_axes([0, 0, 1, 1])
    ax.imshow(np.sin(k * 3 * x) * np.cos(k * 2 * y), cmap=cmap)
    ax.set_axis_off()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()''',
    '''slider = widgets.IntSlider(value=2, min=1, max=8, description="k")
dropdown = widgets.Dropdown(options=["viridis", "magma", "gray"], value="viridis", description="cmap")
image = widgets.Image(value=render_png(2, "viridis"), format="png", layout=widgets.Layout(width="320px"))

def redraw(change=None):
    image.value = render_png(slider.value, dropdown.value)

slider.observe(redraw, names="value")
dropdown.observe(redraw, names="value")
viewer = widgets.VBox([widgets.HBox([slider, dropdown]), image])
viewer''',
    '''# driving the viewer from code also redraws (what nbval checks without a browser)
before = image.value
slider.value = 3
assert image.value != before
slider.value = 2''',
]


def write_harness_notebook(path: Path) -> Path:
    """Write the harness notebook (python3 kernel, no outputs) to ``path``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Browser harness: a slider, a dropdown and an image")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in HARNESS_CELLS]
    nbformat.write(nb, path)
    return path


# -- JavaScript run in the page (JupyterLab exposes window.jupyterapp: expose_app_in_browser) --------
JS_NOTEBOOK_READY = """(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return false;
  const panel = app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path || !panel.context.isReady) return false;
  const session = panel.sessionContext;
  if (!session || !session.isReady || !session.session || !session.session.kernel) return false;
  return session.session.kernel.status === 'idle' && session.session.kernel.connectionStatus === 'connected';
}"""

# Every error the kernel reports on IOPub, including those raised in widget callbacks: those belong
# to no cell (JupyterLab sends them to its Log Console), so the cell outputs never show them.
JS_LISTEN_KERNEL_ERRORS = """() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__deltazKernelErrors = [];
  kernel.iopubMessage.connect((_, msg) => {
    const type = msg.header.msg_type, content = msg.content;
    if (type === 'error') window.__deltazKernelErrors.push(`${content.ename}: ${content.evalue}`);
    if (type === 'stream' && content.name === 'stderr' && String(content.text).includes('Traceback'))
      window.__deltazKernelErrors.push(String(content.text).slice(0, 400));
  });
  return true;
}"""

JS_KERNEL_ERRORS = "() => window.__deltazKernelErrors"

JS_RUN_ALL = """() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }"""

# Done when the kernel is idle and no cell is queued or running, and either every code cell ran or
# one failed (Run All stops at the first error).
JS_RUN_STATE = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const cells = panel.content.widgets.filter(c => c.model.type === 'code');
  const running = cells.filter(c => (c.promptNode && c.promptNode.textContent.includes('*'))
                                    || c.model.executionState === 'running').length;
  const executed = cells.filter(c => c.model.executionCount !== null).length;
  const errors = [];
  cells.forEach((c, i) => {
    const outputs = c.model.outputs.toJSON();
    outputs.forEach(o => {
      if (o.output_type === 'error') errors.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
      if (o.output_type === 'stream' && o.name === 'stderr' && String(o.text).includes('Traceback'))
        errors.push(`cell ${i} stderr: ${String(o.text).slice(0, 400)}`);
    });
  });
  const idle = !!kernel && kernel.status === 'idle';
  return {idle, running, executed, total: cells.length, errors,
          done: idle && running === 0 && (executed === cells.length || errors.length > 0)};
}"""

# Errors drawn in the page: error/stderr outputs with a traceback, widgets that failed to render.
JS_PAGE_ERRORS = """() => {
  const found = [];
  document.querySelectorAll('.jp-OutputArea-output').forEach(node => {
    const mime = node.getAttribute('data-mime-type') || '';
    const text = node.textContent || '';
    if (text.includes('Traceback') || (mime.includes('stderr') && /\\b\\w*Error\\b/.test(text)))
      found.push(`${mime}: ${text.slice(0, 400)}`);
    if (text.includes('Error displaying widget')) found.push(`widget: ${text.slice(0, 200)}`);
  });
  return found;
}"""

# Mark the first viewer: an ipywidgets Image together with the nearest enclosing widget that also
# holds a control (slider, dropdown with a choice, toggle buttons). Returns how many of each it has.
JS_MARK_VIEWER = """() => {
  const CONTROLS = '.widget-slider .noUi-handle, .widget-dropdown select, .widget-toggle-buttons button';
  for (const img of document.querySelectorAll('img.widget-image')) {
    if (!img.getAttribute('src')) continue;
    let box = img.parentElement;
    while (box && !box.querySelector(CONTROLS)) {
      box = box.classList.contains('jp-OutputArea-output') ? null : box.parentElement;
    }
    if (!box) continue;
    img.setAttribute('data-deltaz-viewer-image', '1');
    box.setAttribute('data-deltaz-viewer', '1');
    const selects = Array.from(box.querySelectorAll('.widget-dropdown select'));
    return {sliders: box.querySelectorAll('.widget-slider').length,
            dropdowns: selects.filter(s => s.options.length > 1).length,
            toggles: box.querySelectorAll('.widget-toggle-buttons').length};
  }
  return null;
}"""

VIEWER = """() => {
  const CONTROLS = '.widget-slider .noUi-handle, .widget-dropdown select';
  for (const img of document.querySelectorAll('img.widget-image')) {
    if (!img.getAttribute('src')) continue;
    let box = img.parentElement;
    while (box && !box.querySelector(CONTROLS)) {
      box = box.classList.contains('jp-OutputArea-output') ? null : box.parentElement;
    }
    if (!box) continue;
    img.setAttribute('data-deltaz-viewer-image', '1');
    box.setAttribute('data-deltaz-viewer', '1');
    return {sliders: box.querySelectorAll('.widget-slider .noUi-handle').length,
            dropdowns: box.querySelectorAll('.widget-dropdown select').length};
  }
  return null;
}"""

VIEWER = "[data-deltaz-viewer='1']"
VIEWER_IMAGE = "img[data-deltaz-viewer-image='1']"


def wait_for(page, js: str, timeout_s: float, what: str, arg=None, server=None):
    """Poll ``js`` in the page until it returns a truthy value; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = page.evaluate(js, arg)
        if value:
            return value
        if time.monotonic() > deadline:
            log = f"\n--- JupyterLab log ---\n{server.log_tail()}" if server else ""
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}{log}", pytrace=False)
        time.sleep(0.25)


def image_src(page) -> str:
    return page.get_attribute(VIEWER_IMAGE, "src") or ""


def drive_control(page, control: str, out_dir: Path) -> None:
    """Change one control of the marked viewer as a user would; assert that its image changes.

    ``slider``: focus the first slider's handle and press ArrowRight (one step); ``dropdown``: pick
    another option of the first dropdown that has one; ``toggle``: click the first toggle button that
    is not selected. Saves ``<control>_before.png`` / ``<control>_after.png`` of the image.
    """
    image = page.locator(VIEWER_IMAGE)
    src_before = image_src(page)
    png_before = image.screenshot(path=str(out_dir / f"{control}_before.png"), timeout=15_000)
    if control == "slider":
        handle = page.locator(f"{VIEWER} .widget-slider .noUi-handle").first
        handle.focus()
        handle.press("ArrowRight")
    elif control == "dropdown":
        selects = page.locator(f"{VIEWER} .widget-dropdown select")
        for i in range(selects.count()):
            select = selects.nth(i)
            values = select.evaluate("s => Array.from(s.options).map(o => o.value)")
            others = [v for v in values if v != select.input_value()]
            if others:
                select.select_option(others[0])
                break
    elif control == "toggle":
        page.locator(f"{VIEWER} .widget-toggle-buttons button:not(.mod-active)").first.click()
    else:
        raise ValueError(f"control: expected slider, dropdown or toggle, got {control!r}")
    deadline = time.monotonic() + IMAGE_CHANGE_TIMEOUT_S
    while image_src(page) == src_before:
        if time.monotonic() > deadline:
            pytest.fail(
                f"changing the viewer's {control} did not change its image within {IMAGE_CHANGE_TIMEOUT_S} s",
                pytrace=False,
            )
        time.sleep(0.2)
    page.wait_for_function(  # the new image has loaded
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=VIEWER_IMAGE, timeout=15_000,
    )
    png_after = image.screenshot(path=str(out_dir / f"{control}_after.png"), timeout=15_000)
    assert png_after != png_before, f"the {control} changed the image source but not its pixels"


def prepare_case(case: str, tmp_path: Path) -> tuple[Path, str]:
    """Root folder for JupyterLab and the notebook path (relative to it) for ``case``."""
    if case == "harness":
        write_harness_notebook(tmp_path / "harness_viewer.ipynb")
        return tmp_path, "harness_viewer.ipynb"
    course = ROOT / COURSE_VIEWER_NOTEBOOK
    # A copy: JupyterLab never writes into the repository; the kernel still runs from a
    # `notebooks/` folder, and the course finds its data through deltaz.core.paths.
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy2(nb, notebooks / nb.name)
    return notebooks, course.name


def check_viewer_notebook(page, server, notebook: str, out_dir: Path, run_timeout_s: float) -> dict:
    """Open ``notebook`` in JupyterLab, Run All, check for errors, drive the first viewer's controls.

    Returns ``{"controls": counts, "driven": [kinds], "open_s", "run_s", "interact_s"}``; fails the
    test on a cell error, an error output, a widget that does not render, or an image that does not
    change. Screenshots: ``page.png`` (after Run All), ``before.png`` / ``after.png`` (the viewer
    before and after all interactions), ``<control>_before/after.png`` (its image), ``page_after.png``.
    """
    t0 = time.monotonic()
    page.goto(server.url(f"lab/tree/{notebook}"), wait_until="domcontentloaded", timeout=60_000)
    wait_for(page, JS_NOTEBOOK_READY, 90, "the notebook to open with an idle kernel", notebook, server)
    server.remember_children()
    page.evaluate(JS_LISTEN_KERNEL_ERRORS)
    t_open = time.monotonic()

    page.evaluate(JS_RUN_ALL)
    state = wait_for(page, "() => { const s = (" + JS_RUN_STATE + ")(); return s.done ? s : null; }",
                     run_timeout_s, "Run All Cells to finish", server=server)
    t_run = time.monotonic()
    page.screenshot(path=str(out_dir / "page.png"))
    assert not state["errors"], "cells raised errors:\n" + "\n".join(state["errors"])
    assert state["executed"] == state["total"], f"only {state['executed']} of {state['total']} cells ran"
    page_errors = page.evaluate(JS_PAGE_ERRORS)
    assert not page_errors, "error output in the page:\n" + "\n".join(page_errors)

    # The viewer's controls are drawn.
    page.wait_for_selector(".jupyter-widgets img.widget-image", state="visible", timeout=30_000)
    controls = wait_for(page, JS_MARK_VIEWER, 30, "a viewer (an image widget with controls)")
    page.locator(VIEWER).scroll_into_view_if_needed()
    page.locator(VIEWER).screenshot(path=str(out_dir / "before.png"))

    # Changing each kind of control redraws the image.
    driven = [kind for kind in ("slider", "dropdown", "toggle") if controls[kind + "s"]]
    assert driven, f"the viewer has no control to drive: {controls}"
    for kind in driven:
        drive_control(page, kind, out_dir)
    page.locator(VIEWER).screenshot(path=str(out_dir / "after.png"))

    # Still no error anywhere after the interaction.
    time.sleep(0.5)  # let the last callbacks' messages arrive
    state = page.evaluate(JS_RUN_STATE)
    kernel_errors = page.evaluate(JS_KERNEL_ERRORS)
    assert not state["errors"] and not kernel_errors, "the viewer's callbacks raised:\n" + "\n".join(
        state["errors"] + kernel_errors
    )
    page_errors = page.evaluate(JS_PAGE_ERRORS)
    assert not page_errors, "error output in the page after interacting:\n" + "\n".join(page_errors)
    page.screenshot(path=str(out_dir / "page_after.png"))
    return {
        "controls": controls,
        "driven": driven,
        "open_s": t_open - t0,
        "run_s": t_run - t_open,
        "interact_s": time.monotonic() - t_run,
    }


@pytest.mark.parametrize(
    "case",
    [
        "harness",
        pytest.param(
            "course",
            marks=pytest.mark.skipif(
                not (ROOT / COURSE_VIEWER_NOTEBOOK).exists(),
                reason=f"course viewer notebook not written yet ({COURSE_VIEWER_NOTEBOOK})",
            ),
        ),
    ],
)
def test_viewer_notebook_runs_and_reacts_in_jupyterlab(case, browser, start_lab, tmp_path):
    root_dir, notebook = prepare_case(case, tmp_path)
    out_dir = OUTPUT_DIR / case
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    env = {"DELTAZ_SMOKE": "1"}
    for name in ("DELTAZ_DATA", "DELTAZ_RUNS"):  # keep the run's data out of the repository
        env[name] = os.environ.get(name) or str(tmp_path / name.lower().split("_")[1])

    t0 = time.monotonic()
    server = start_lab(root_dir, env)
    t_server = time.monotonic() - t0
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page_errors: list[str] = []
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    try:
        result = check_viewer_notebook(page, server, notebook, out_dir, RUN_ALL_TIMEOUT_S[case])
    except BaseException:
        try:
            page.screenshot(path=str(out_dir / "failure.png"), timeout=10_000)
        except Exception:  # noqa: BLE001 - best effort; the original error matters
            pass
        (out_dir / "jupyterlab.log").write_text(server.log_tail(100_000))
        raise
    finally:
        context.close()
    print(
        f"[{case}] server {t_server:.1f} s, open {result['open_s']:.1f} s, run all {result['run_s']:.1f} s, "
        f"interact {result['interact_s']:.1f} s; drove {result['driven']}; page errors: {page_errors}"
    )
    if case == "harness":
        assert result["controls"] == {"sliders": 1, "dropdowns": 1, "toggles": 0}, result["controls"]
