"""The clinician UI's state: starting to type with no session, ending a session on
purpose, the favicon. Headless Chromium against daphne."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.tcp_proxy import SeverableProxy
from tests.ui.test_chat_ui import (
    accept_terms,
    answers,
    questions,
    ready_to_chat,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_it_opens_a_session_for_the_first_message_typed_without_one(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    sign_in(page, ui_server.url, "paulo", ui_accounts["paulo"])
    accept_terms(page)

    expect(page.locator("#chat-subtitle")).to_contain_text("Escreva sua pergunta")
    box = page.locator("#message-input")
    expect(box).to_be_enabled()
    box.fill("Qual o intervalo entre sessões de peeling?")
    box.press("Enter")

    expect(page).to_have_url(re.compile(r"/chat/[0-9a-f-]{36}/$"))
    expect(questions(page)).to_have_count(1)
    expect(answers(page).first).to_have_attribute("data-status", "complete")
    expect(page.locator(".session-link")).to_have_count(1)
    expect(box).to_have_value("")
    assert page.errors == []


def test_it_asks_before_ending_a_session_and_then_says_it_ended_without_a_warning(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    ready_to_chat(page, ui_server.url, "rafa", ui_accounts["rafa"])
    dialog = page.locator("#confirm-dialog")

    page.get_by_role("button", name="Encerrar sessão").click()
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Encerrar esta sessão?")
    page.get_by_role("button", name="Cancelar").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#message-input")).to_be_enabled()
    expect(page.locator(".session-link[aria-current=page] .badge")).to_have_text("ativa")

    page.get_by_role("button", name="Encerrar sessão").click()
    dialog.get_by_role("button", name="Encerrar sessão").click()
    expect(page.locator("#chat-subtitle")).to_have_text("Sessão encerrada")
    expect(page.locator(".session-link[aria-current=page] .badge")).to_have_text("encerrada")
    expect(page.locator("#message-input")).to_be_disabled()
    expect(page.locator("#conn-status")).to_have_attribute("data-state", "idle")
    expect(page.locator("#banner")).to_be_hidden()
    assert page.dialogs == []  # no window.confirm: the page's own dialog


def test_it_serves_a_favicon(browser_page, ui_server):
    page = browser_page
    response = page.request.get(f"{ui_server.url}/favicon.ico")
    assert response.status == 200
    assert response.headers["content-type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert response.body()[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_it_clears_a_connection_banner_once_the_connection_is_back(
    browser_page, ui_server, ui_accounts, sim
):
    proxy = SeverableProxy("127.0.0.1", ui_server.port).start()
    try:
        page = browser_page
        ready_to_chat(page, proxy.url, "dora", ui_accounts["dora"])
        banner = page.locator("#banner")

        page.context.set_offline(True)
        page.get_by_label("Buscar nas suas sessões").fill("peeling")  # a request that fails
        expect(banner).to_have_attribute("data-code", "network")
        page.context.set_offline(False)
        assert proxy.sever() >= 1  # the socket drops and the page reconnects

        expect(page.locator("#conn-status")).to_have_attribute("data-state", "open")
        expect(banner).to_be_hidden()
    finally:
        proxy.stop()
