"""The clinician UI's answers: Markdown rendered while streaming, and never any HTML
run, from the model or from the clinician. Headless Chromium against daphne."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.ui.test_chat_ui import answers, questions, ready_to_chat, send

pytestmark = pytest.mark.browser

# The simulated provider echoes the question, so the "model" answers this Markdown,
# HTML payloads included.
MARKDOWN_QUESTION = (
    "formatação\n\n"
    "## Cuidados\n\n"
    "- **hidratar** a pele\n"
    "- evitar *sol* direto\n\n"
    "| Dia | Cuidado |\n"
    "|---|---|\n"
    "| 1 | compressa fria |\n\n"
    "```\nrepouso()\n```\n\n"
    "Veja [o guia](https://example.org/guia) "
    "<script>window.__pwned = 1</script> "
    '<img src=x onerror="window.__pwned = 2">\n\n'
    "Fim."
)


def assert_rendered(answer) -> None:
    expect(answer.locator("h2")).to_have_text("Cuidados")
    expect(answer.locator("li")).to_have_count(2)
    expect(answer.locator("li strong")).to_have_text("hidratar")
    expect(answer.locator("li em")).to_have_text("sol")
    expect(answer.locator("table th").first).to_have_text("Dia")
    expect(answer.locator("table td").last).to_have_text("compressa fria")
    expect(answer.locator("pre code")).to_have_text("repouso()")
    link = answer.locator("a", has_text="o guia")
    expect(link).to_have_attribute("href", "https://example.org/guia")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    # The HTML is shown as the text it is, not parsed.
    expect(answer.locator(".msg-body")).to_contain_text("<script>window.__pwned = 1</script>")
    expect(answer.locator(".msg-body")).to_contain_text('<img src=x onerror="window.__pwned = 2">')


def assert_nothing_ran(page) -> None:
    expect(page.locator("#messages img")).to_have_count(0)
    expect(page.locator("#messages script")).to_have_count(0)
    assert page.evaluate("window.__pwned === undefined")
    assert page.dialogs == []
    assert page.errors == []


def test_it_renders_a_streamed_markdown_answer_and_runs_none_of_its_html(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    # Slow enough that the heading is on screen well before the answer ends.
    sim.configure(token_delay_ms=60, answer_tokens=40)
    ready_to_chat(page, ui_server.url, "nina", ui_accounts["nina"])

    send(page, MARKDOWN_QUESTION)
    answer = answers(page).first
    expect(answer.locator("h2")).to_have_text("Cuidados")
    assert answer.get_attribute("data-status") == "streaming"  # rendered while it streams
    expect(answer).to_have_attribute("data-status", "complete", timeout=30_000)
    assert_rendered(answer)
    # The question is the clinician's own text: shown verbatim, never formatted.
    expect(questions(page).first.locator(".msg-body")).to_have_text(MARKDOWN_QUESTION)
    expect(questions(page).first.locator("h2")).to_have_count(0)
    assert_nothing_ran(page)

    page.reload()  # the history renders the same way
    assert_rendered(answers(page).first)
    assert_nothing_ran(page)


def test_it_never_runs_a_javascript_link(browser_page, ui_server, ui_accounts, sim):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=0)
    ready_to_chat(page, ui_server.url, "olga", ui_accounts["olga"])

    send(page, "Veja [clique aqui](javascript:window.__pwned=3) e [dados](data:text/html,x).")
    answer = answers(page).first
    expect(answer).to_have_attribute("data-status", "complete")
    expect(answer.locator("a[href^=javascript]")).to_have_count(0)
    expect(answer.locator("a[href^=data]")).to_have_count(0)
    expect(answer.locator(".msg-body")).to_contain_text("clique aqui")
    assert_nothing_ran(page)
