"""The clinician UI's look: dark mode (system setting and a remembered toggle), the
phone layout at 390 × 844, and axe-core (vendored) on the chat, consent and login
pages in both themes. Headless Chromium against daphne."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.ui.test_chat_ui import (
    accept_terms,
    answers,
    send,
    sign_in,
)

pytestmark = pytest.mark.browser

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
LIGHT_BG = "rgb(244, 246, 248)"
DARK_BG = "rgb(13, 20, 25)"
PHONE = {"width": 390, "height": 844}
# Arrows, symbols, dingbats and emoji: each needs a font that may not be installed.
SYMBOL_GLYPHS = re.compile("[\u2190-\u2bff\U0001f000-\U0001faff]")


def serious_violations(page) -> list[dict]:
    """axe-core's serious and critical findings on the page as it is now."""
    return page.evaluate(
        """async () => {
          const result = await axe.run(document, {resultTypes: ["violations"]});
          return result.violations
            .filter((v) => v.impact === "serious" || v.impact === "critical")
            .map((v) => ({id: v.id, impact: v.impact,
                          nodes: v.nodes.slice(0, 5).map((n) => n.target.join(" "))}));
        }"""
    )


def new_page(chromium, *, color_scheme: str, viewport=None):
    context = chromium.new_context(
        locale="pt-BR", timezone_id="America/Sao_Paulo", color_scheme=color_scheme,
        viewport=viewport or {"width": 1280, "height": 800},
        reduced_motion="reduce",  # the drawer opens without its slide: positions are final
    )
    context.set_default_timeout(15_000)
    # An init script runs before the page's own and is not subject to its CSP.
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    return page


def body_background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_axe_finds_nothing_serious_on_login_consent_and_chat(
    chromium, ui_server, ui_accounts, sim, scheme, screenshots
):
    sim.configure(token_delay_ms=0, answer_tokens=20)
    page = new_page(chromium, color_scheme=scheme)
    try:
        username = "xenia" if scheme == "light" else "yara"
        page.goto(f"{ui_server.url}/login/")
        assert body_background(page) == (LIGHT_BG if scheme == "light" else DARK_BG)
        assert serious_violations(page) == [], "login"

        sign_in(page, ui_server.url, username, ui_accounts[username])
        expect(page).to_have_url(re.compile(r"/chat/consent/"))
        assert serious_violations(page) == [], "consent"
        accept_terms(page)

        send(page, "Resumo\n\n## Cuidados\n\n- **hidratar**\n- `protetor`\n\n"
                   "| Dia | Cuidado |\n|---|---|\n| 1 | gelo |\n\n```\nrepouso()\n```\n\nFim.")
        expect(answers(page).first).to_have_attribute("data-status", "complete")
        assert serious_violations(page) == [], "chat"
        # Icons are drawn (SVG), not font glyphs that show as boxes where no emoji font is.
        icon_buttons = page.locator(
            "#theme-toggle, [data-testid=rename-session], [data-testid=delete-session], "
            "[data-testid=rate-up], [data-testid=rate-down]")
        assert icon_buttons.count() == 5
        for index in range(icon_buttons.count()):
            button = icon_buttons.nth(index)
            assert button.locator("svg").count() == 1
            assert not SYMBOL_GLYPHS.search(button.inner_text())
        screenshots(page, f"chat-{scheme}")
        assert page.errors == []
    finally:
        page.context.close()


def test_it_follows_the_system_theme_and_remembers_the_toggle(chromium, ui_server):
    page = new_page(chromium, color_scheme="dark")
    try:
        page.goto(f"{ui_server.url}/login/")
        assert body_background(page) == DARK_BG
        toggle = page.locator("#theme-toggle")
        expect(toggle).to_have_attribute("aria-pressed", "true")

        toggle.click()
        expect(toggle).to_have_attribute("aria-pressed", "false")
        assert body_background(page) == LIGHT_BG
        page.reload()  # remembered over the system setting
        assert body_background(page) == LIGHT_BG
        expect(page.locator("html")).to_have_attribute("data-theme", "light")
        expect(toggle).to_have_attribute("aria-pressed", "false")
    finally:
        page.context.close()


def test_the_toggle_turns_dark_on_over_a_light_system_setting(chromium, ui_server):
    page = new_page(chromium, color_scheme="light")
    try:
        page.goto(f"{ui_server.url}/login/")
        assert body_background(page) == LIGHT_BG
        page.locator("#theme-toggle").click()
        expect(page.locator("html")).to_have_attribute("data-theme", "dark")
        assert body_background(page) == DARK_BG
        page.reload()
        assert body_background(page) == DARK_BG
    finally:
        page.context.close()


def test_it_fits_a_phone_with_the_composer_pinned_and_the_sessions_in_a_drawer(
    chromium, ui_server, ui_accounts, sim, screenshots
):
    sim.configure(token_delay_ms=0, answer_tokens=150)
    page = new_page(chromium, color_scheme="light", viewport=PHONE)
    try:
        # No "Nova sessão" on screen (it is in the drawer): the first message opens one.
        sign_in(page, ui_server.url, "zeca", ui_accounts["zeca"])
        accept_terms(page)
        composer = page.locator("#composer")
        sidebar = page.locator("#sidebar")
        expect(sidebar).to_be_hidden()  # a drawer, closed

        def assert_pinned() -> None:
            box = composer.bounding_box()
            assert box is not None
            assert abs(box["y"] + box["height"] - PHONE["height"]) <= 1, box
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 0.5, box

        def assert_no_overflow() -> None:
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], width
            wide = page.evaluate(
                """() => [...document.querySelectorAll("main *")]
                     .filter((el) => el.offsetParent !== null && !el.closest(".sidebar"))
                     .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5
                                     && !el.closest("pre, table"))
                     .map((el) => el.tagName + "." + el.className).slice(0, 5)"""
            )
            assert wide == []

        assert_pinned()
        assert_no_overflow()
        for number in range(3):  # a long conversation scrolls inside; the composer stays
            send(page, f"Pergunta {number + 1} sobre cuidados depois do peeling químico")
            expect(answers(page).nth(number)).to_have_attribute("data-status", "complete")
        assert_pinned()
        assert_no_overflow()
        assert page.evaluate("window.scrollY") == 0
        screenshots(page, "phone-chat")

        page.get_by_role("button", name="Sessões").click()
        expect(sidebar).to_be_visible()
        box = sidebar.bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] <= PHONE["width"]
        expect(page.locator("#drawer-toggle")).to_have_attribute("aria-expanded", "true")
        screenshots(page, "phone-drawer")
        page.keyboard.press("Escape")
        expect(sidebar).to_be_hidden()
        assert page.errors == []
    finally:
        page.context.close()
