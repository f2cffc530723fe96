"""Chromium via Playwright against a running Airflow: a logged-in page, and filling the trigger form's JSON
fields (Airflow renders an object Param as a code editor that auto-closes brackets and quotes)."""

from __future__ import annotations

import json
from typing import Any

CHROMIUM = "/usr/bin/chromium"


def browser_page(playwright: Any, base: str, token: str, width: int = 1400, height: int = 1800):
    """(browser, page) logged in through the UI's `_token` cookie."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-quic",
        ],
    )
    context = browser.new_context(viewport={"width": width, "height": height})
    context.add_cookies([{"name": "_token", "value": token, "url": base}])
    context.set_default_timeout(120_000)  # a loaded 2-core machine serves the UI slowly
    context.set_default_navigation_timeout(120_000)
    return browser, context.new_page()


def fill_json_field(page: Any, dialog: Any, element_id: str, value: Any) -> None:
    """Replace the JSON in the form field `element_id` (e.g. `element_override`) with `value`."""
    dialog.locator(f"#{element_id} .monaco-editor").first.click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(json.dumps(value))
    page.keyboard.press("Shift+Control+End")  # drop what the editor auto-closed after the cursor
    page.keyboard.press("Delete")
