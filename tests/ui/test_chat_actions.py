"""The clinician UI's actions on messages and sessions: copy, regenerate, edit and
resend, feedback, titles, rename, search and delete. Headless Chromium against daphne."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.test_chat_ui import (
    COMPLETIONS,
    answers,
    expected_answer,
    questions,
    ready_to_chat,
    send,
)

pytestmark = pytest.mark.browser

CPF = "123.456.789-09"


def last_prompt(sim) -> str:
    body = sim.requests(path=COMPLETIONS)[-1]["body"]
    return body["messages"][-1]["content"]


def test_it_copies_an_answer_and_each_code_block(browser_page, ui_server, ui_accounts, sim):
    page = browser_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui_server.url)
    sim.configure(token_delay_ms=0, answer_tokens=0)
    ready_to_chat(page, ui_server.url, "sara", ui_accounts["sara"])

    question = "Rotina\n\n```\nlimpar(); hidratar()\n```\n\nFim."
    send(page, question)
    answer = answers(page).first
    expect(answer).to_have_attribute("data-status", "complete")

    answer.get_by_test_id("copy-code").click()
    expect(answer.get_by_test_id("copy-code")).to_have_text("Copiado!")
    assert page.evaluate("navigator.clipboard.readText()").strip() == "limpar(); hidratar()"

    answer.get_by_test_id("copy-answer").click()
    expect(answer.get_by_test_id("copy-answer")).to_have_text("Copiado!")
    assert page.evaluate("navigator.clipboard.readText()") == expected_answer(question, 0)


def test_it_regenerates_the_last_answer_and_keeps_the_earlier_one(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    ready_to_chat(page, ui_server.url, "tiago", ui_accounts["tiago"])

    send(page, "Quanto tempo dura o efeito do preenchimento?")
    expect(answers(page).first).to_have_attribute("data-status", "complete")
    calls = len(sim.requests(path=COMPLETIONS))
    answers(page).first.get_by_test_id("regenerate").click()

    expect(answers(page)).to_have_count(2)
    expect(answers(page).last).to_have_attribute("data-status", "complete")
    assert len(sim.requests(path=COMPLETIONS)) == calls + 1  # a new provider call
    assert "preenchimento" in last_prompt(sim)
    # Only the last answer offers it.
    expect(answers(page).first.get_by_test_id("regenerate")).to_be_hidden()
    expect(answers(page).last.get_by_test_id("regenerate")).to_be_visible()

    page.reload()
    expect(answers(page)).to_have_count(2)


def test_it_edits_the_last_question_and_resends_it_through_redaction(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    ready_to_chat(page, ui_server.url, "ursula", ui_accounts["ursula"])

    send(page, "Pode fazer laser depois do peeling?")
    expect(answers(page).first).to_have_attribute("data-status", "complete")
    expect(questions(page).first.get_by_test_id("edit-question")).to_be_visible()
    questions(page).first.get_by_test_id("edit-question").click()
    expect(page.locator("#message-input")).to_have_value("Pode fazer laser depois do peeling?")
    expect(page.locator("#edit-note")).to_be_visible()

    edited = f"Pode fazer laser na paciente Maria Aparecida da Silva, CPF {CPF}?"
    page.locator("#message-input").fill(edited)
    page.get_by_role("button", name="Enviar").click()
    expect(answers(page)).to_have_count(2)
    expect(answers(page).last).to_have_attribute("data-status", "complete")
    expect(page.locator("#edit-note")).to_be_hidden()
    prompt = last_prompt(sim)
    assert CPF not in prompt and "Maria" not in prompt  # redacted like any message
    expect(questions(page).last.locator(".msg-body")).to_have_text(edited)
    expect(questions(page).first.locator(".msg-body")).to_have_text(
        "Pode fazer laser depois do peeling?")  # the earlier exchange stays


def test_it_records_feedback_with_an_optional_comment(browser_page, ui_server, ui_accounts, sim):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    ready_to_chat(page, ui_server.url, "vera", ui_accounts["vera"])

    send(page, "Qual protetor indicar?")
    answer = answers(page).first
    expect(answer).to_have_attribute("data-status", "complete")
    answer.get_by_role("button", name="Resposta não útil").click()
    expect(answer.get_by_test_id("rate-down")).to_have_attribute("aria-pressed", "true")
    expect(answer.get_by_test_id("rate-up")).to_have_attribute("aria-pressed", "false")
    answer.get_by_test_id("feedback-comment").fill("Faltou o fator de proteção")
    answer.get_by_role("button", name="Enviar comentário").click()
    expect(answer).to_contain_text("Obrigado pela avaliação.")

    page.reload()
    expect(answers(page).first.get_by_test_id("rate-down")).to_have_attribute(
        "aria-pressed", "true")


def test_it_titles_renames_searches_and_deletes_sessions(
    browser_page, ui_server, ui_accounts, sim
):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    ready_to_chat(page, ui_server.url, "wagner", ui_accounts["wagner"])
    first_url = page.url

    send(page, f"A paciente Maria Aparecida da Silva, CPF {CPF}, pode usar toxina botulínica?")
    expect(answers(page).first).to_have_attribute("data-status", "complete")
    current = page.locator(".session-link[aria-current=page]")
    expect(current.locator(".session-title")).to_have_text(re.compile(r"^A paciente \["))
    title = current.locator(".session-title").inner_text()
    assert CPF not in title and "Maria" not in title and "Silva" not in title
    expect(page.locator("#chat-title")).to_have_text(title)
    expect(current.locator(".session-meta")).to_contain_text("última atividade")

    page.get_by_role("button", name="Nova sessão").click()
    expect(page).not_to_have_url(first_url)
    send(page, "Como conduzir a drenagem linfática?")
    expect(answers(page).first).to_have_attribute("data-status", "complete")
    expect(page.locator(".session-link")).to_have_count(2)

    # Rename the first session.
    first_path = first_url[len(ui_server.url):]
    item = page.locator(".session-item").filter(has=page.locator(f"a[href='{first_path}']"))
    item.get_by_test_id("rename-session").click()
    page.get_by_test_id("rename-input").fill("Toxina — retorno")
    page.get_by_test_id("rename-input").press("Enter")
    expect(page.locator(".session-title", has_text="Toxina — retorno")).to_have_count(1)

    # Search by a word that only the first conversation has (its answer echoes it).
    page.get_by_label("Buscar nas suas sessões").fill("botulinica")
    expect(page.locator(".session-link")).to_have_count(1)
    expect(page.locator(".session-title")).to_have_text("Toxina — retorno")
    page.get_by_label("Buscar nas suas sessões").fill("ausente")
    expect(page.locator(".session-empty")).to_have_text("Nenhuma sessão corresponde a esta busca.")
    page.get_by_label("Buscar nas suas sessões").fill("")
    expect(page.locator(".session-link")).to_have_count(2)

    # Delete the current (second) session, after confirming.
    current.locator("xpath=..").get_by_test_id("delete-session").click()
    expect(page.locator("#confirm-dialog")).to_contain_text("Excluir a sessão")
    page.locator("#confirm-ok").click()
    expect(page.locator(".session-link")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"/chat/$"))
    expect(page.locator("#banner")).to_be_hidden()
    expect(page.locator("#message-input")).to_be_enabled()
    assert page.errors == []


def test_it_exports_the_conversation_as_markdown_and_pdf(browser_page, ui_server, ui_accounts, sim):
    page = browser_page
    sim.configure(token_delay_ms=0, answer_tokens=3)
    ready_to_chat(page, ui_server.url, "alice", ui_accounts["alice"])
    question = "A paciente Maria Aparecida da Silva pode fazer laser?"
    send(page, question)
    expect(answers(page).first).to_have_attribute("data-status", "complete")

    with page.expect_download() as download:
        page.get_by_role("link", name="Exportar .md").click()
    text = open(download.value.path(), encoding="utf-8").read()
    assert download.value.suggested_filename.endswith(".md")
    assert question in text and "## Assistente" in text

    with page.expect_download() as download:
        page.get_by_role("link", name="Exportar PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    assert open(download.value.path(), "rb").read(5) == b"%PDF-"
