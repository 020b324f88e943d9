"""A PNG of the console's Ready to Export view, taken by Playwright driving Debian's Chromium."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path
from typing import Any

#: Debian's Chromium (`apt-get install chromium`); Playwright's own browsers are not needed.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: Wide enough for the view's columns (pixels); the shot is as tall as the page (full_page).
WIDTH = 1100


class ScreenshotFailed(RuntimeError):
    """No screenshot: Playwright or Chromium is missing, or the console never showed the view."""


def capture(
    console_url: str,
    company_id: str,
    user_name: str,
    path: Path,
    *,
    tab: str = "commitments",
    view: str = "ready-to-export",
    timeout_s: float = 60.0,
) -> Path:
    """Sign in to the console at `console_url` (its dev sign-in) as `user_name` of
    `company_id`, open `/tabs/<tab>/<view>` once it lists at least one item, and save the
    whole page (WIDTH pixels wide) as a PNG at `path`; returns `path`.

    Raises ScreenshotFailed when Playwright or Chromium is missing or the page never lists an
    item within `timeout_s` seconds.
    """
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise ScreenshotFailed("playwright is not installed (pip install -e '.[dev]')") from exc
    if not Path(CHROMIUM).exists():
        raise ScreenshotFailed(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    timeout_ms = timeout_s * 1000
    path.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(
                base_url=console_url, viewport={"width": WIDTH, "height": 100}
            )
            page: Any = context.new_page()
            page.goto("/signin")
            row = page.locator("tr", has_text=company_id)
            row.get_by_role("button", name=f"Sign in as {user_name}").click(timeout=timeout_ms)
            page.wait_for_url(re.compile(r"/tabs/"), timeout=timeout_ms)
            # the read model follows the pipeline: reload until the view lists an item
            deadline = time.monotonic() + timeout_s
            while True:
                page.goto(f"/tabs/{tab}/{view}")
                if page.locator("a[href^='/items/']").count() > 0:
                    break
                if time.monotonic() > deadline:
                    raise ScreenshotFailed(f"{tab}/{view} listed no item in {timeout_s:.0f}s")
                page.wait_for_timeout(250)
            page.screenshot(path=str(path), full_page=True)
        except Error as exc:
            raise ScreenshotFailed(f"the console did not show {tab}/{view}: {exc}") from exc
        finally:
            browser.close()
    return path
