"""The clinician UI stays smooth: a 400-token streamed answer and a session of 500
messages, measured in headless Chromium as long tasks (main-thread tasks over 50 ms,
the browser's own PerformanceObserver). The figures go to BENCHMARKS.md."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import _base_env, _manage
from tests.ui.test_chat_ui import answers, ready_to_chat, send

pytestmark = pytest.mark.browser

# Rendering everything in one go blocked the page for 630 ms on an idle machine; the
# bound leaves room for a machine shared with other work (tasks then take several
# times longer and more of them pass 50 ms) while still failing that.
MAX_TASK_MS = 250

_OBSERVE_LONG_TASKS = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(Math.round(entry.duration));
}).observe({type: "longtask", buffered: true});
"""

# 250 exchanges of Markdown, stored (encrypted) through the ORM like real ones.
_SEED_HISTORY = """
import os, uuid
from datetime import timedelta
from django.utils import timezone
from chat.models import ChatMessage, ChatSession
session = ChatSession.objects.get(id=os.environ["SPEED_SESSION"])
start = timezone.now() - timedelta(hours=5)
answer = ("## Cuidados\\n\\n- **Hidratar** a pele duas vezes ao dia\\n- Evitar sol por 7 dias\\n"
          "- Usar protetor FPS 50\\n\\n| Dia | Conduta |\\n|---|---|\\n| 1 | compressa fria |\\n"
          "| 2 | hidratante |\\n\\n```\\nreavaliar em 15 dias\\n```\\n\\n" + "Orientação. " * 40)
rows = []
for i in range(250):
    question = ChatMessage(session=session, role="user", content=f"Pergunta {i} sobre peeling",
                           redacted_content=f"Pergunta {i} sobre peeling", client_id=uuid.uuid4(),
                           created_at=start + timedelta(seconds=2 * i))
    rows += [question, ChatMessage(session=session, role="assistant", reply_to=question,
                                   content=answer, redacted_content=answer,
                                   created_at=start + timedelta(seconds=2 * i + 1))]
ChatMessage.objects.bulk_create(rows)
"""


def long_tasks(page) -> list[int]:
    return page.evaluate("window.__longTasks")


def test_a_400_token_answer_streams_without_long_tasks(browser_page, ui_server, ui_accounts, sim):
    page = browser_page
    page.context.add_init_script(_OBSERVE_LONG_TASKS)
    sim.configure(token_delay_ms=5, answer_tokens=400)
    ready_to_chat(page, ui_server.url, "beto", ui_accounts["beto"])
    page.evaluate("window.__longTasks.length = 0")

    started = time.perf_counter()
    send(page, "Resumo dos cuidados depois do peeling, em tópicos")
    answer = answers(page).first
    expect(answer).to_have_attribute("data-status", "complete", timeout=60_000)
    elapsed = time.perf_counter() - started
    tasks = long_tasks(page)
    words = len(answer.locator(".msg-body").inner_text().split())
    print(f"\n400-token answer: {words} words in {elapsed:.2f}s, long tasks {tasks}")
    assert words >= 400
    assert max(tasks, default=0) < MAX_TASK_MS, tasks
    assert page.errors == []


def test_a_session_of_500_messages_opens_without_blocking_the_page(
    browser_page, ui_server, ui_accounts, ui_database_url, sim
):
    page = browser_page
    page.context.add_init_script(_OBSERVE_LONG_TASKS)
    ready_to_chat(page, ui_server.url, "cida", ui_accounts["cida"])
    session_id = re.search(r"/chat/([0-9a-f-]{36})/$", page.url).group(1)
    _manage(["shell", "-c", _SEED_HISTORY],
            env=_base_env(ui_database_url) | {"SPEED_SESSION": session_id})

    started = time.perf_counter()
    page.goto(page.url)
    expect(answers(page).last).to_have_attribute("data-status", "complete")
    first_screen = time.perf_counter() - started
    expect(answers(page)).to_have_count(250, timeout=60_000)
    expect(page.locator("[data-role=user]")).to_have_count(250)
    everything = time.perf_counter() - started
    tasks = long_tasks(page)
    print(f"\n500 messages: last answer on screen after {first_screen:.2f}s, all rendered "
          f"after {everything:.2f}s, long tasks {tasks}")
    # The newest message is what the clinician sees, and it is still in view.
    expect(answers(page).last).to_be_in_viewport()
    expect(answers(page).last.locator("table td").first).to_have_text("1")
    assert max(tasks, default=0) < MAX_TASK_MS, tasks
    assert page.errors == []
