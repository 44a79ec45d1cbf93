"""The compliance back-office in headless Chromium, as a compliance officer and as an
operations engineer: pages load with no console error or CSP violation and fit 1,366 px,
personal data is masked until revealed with a recorded reason, the audit export downloads
and its manifest verifies with the documented command, a data-subject request is filed by
picking a person, and an incident's deadline skips a national holiday."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import zipfile

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import ROOT, _base_env

pytestmark = pytest.mark.browser

_SEED_STAFF = """
import os, uuid
from datetime import timedelta
from django.contrib.auth import get_user_model
from django.utils import timezone
from chat.models import ChatMessage, ChatSession
from clinics.models import Clinic, ClinicMembership
from compliance.roles import COMPLIANCE_OFFICERS, OPERATIONS, roles_ensure_groups
User = get_user_model()
groups = roles_ensure_groups()
password = os.environ["UI_STAFF_PASSWORD"]
for name, group in (("dpo-ana", COMPLIANCE_OFFICERS), ("ops-bia", OPERATIONS)):
    user = User.objects.create_user(username=name, password=password, is_staff=True)
    user.groups.add(groups[group])
clinic, _ = Clinic.objects.get_or_create(name="Clínica do Back-office")
subject = User.objects.create_user(username="msouza-bo", first_name="Maria",
                                   last_name="Souza", email="maria.souza@example.com")
ClinicMembership.objects.create(user=subject, clinic=clinic)
now = timezone.now()
session = ChatSession.objects.create(
    user=subject, clinic=clinic, title="Paciente Joana Prado", status="closed",
    expires_at=now + timedelta(minutes=30),
    pii_mapping={"[NOME_1]": "Joana Prado", "[CPF_1]": "529.982.247-25"})
question = ChatMessage.objects.create(
    session=session, role="user", content="Paciente Joana Prado, CPF 529.982.247-25",
    redacted_content="Paciente [NOME_1], CPF [CPF_1]", pii_counts={"NOME": 1, "CPF": 1},
    client_id=uuid.uuid4())
ChatMessage.objects.create(session=session, role="assistant", reply_to=question,
                           content="<p>Resposta para Joana Prado</p>",
                           redacted_content="<p>Resposta para [NOME_1]</p>",
                           provider="openai", model="m")
print(session.pk)
"""


@pytest.fixture(scope="module")
def back_office(ui_database_url, ui_server):
    """Staff accounts and a session with personal data in the UI database."""
    password = secrets.token_urlsafe(16)
    env = _base_env(ui_database_url) | {"UI_STAFF_PASSWORD": password}
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", _SEED_STAFF],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"password": password, "session": result.stdout.strip().splitlines()[-1],
            "env": _base_env(ui_database_url), "url": ui_server.url}


@pytest.fixture
def wide_page(browser_page: Page) -> Page:
    """The officer's laptop: 1,366 px wide; console errors recorded."""
    browser_page.set_viewport_size({"width": 1366, "height": 768})
    browser_page.console_errors = []
    browser_page.on("console", lambda message: message.type == "error"
                    and browser_page.console_errors.append(
                        f"{message.text} ({message.location.get('url')})"))
    return browser_page


def sign_in(page: Page, back_office: dict, username: str) -> None:
    page.goto(f"{back_office['url']}/admin/login/?next=/admin/")
    page.locator("#id_username").fill(username)
    page.locator("#id_password").fill(back_office["password"])
    page.locator("input[type=submit]").click()
    expect(page.locator("#site-name")).to_have_text("NeonPro — Conformidade LGPD")


def assert_clean(page: Page) -> None:
    """No console error, nothing blocked by the CSP, nothing cut off at 1,366 px."""
    assert page.console_errors == []
    assert page.evaluate("window.__cspViolations || []") == []
    assert page.errors == []
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} is {overflow}px wider than the window"


def session_url(back_office: dict) -> str:
    return f"{back_office['url']}/admin/chat/chatsession/{back_office['session']}/change/"


OFFICER_PAGES = ["/admin/", "/admin/compliance/auditevent/", "/admin/compliance/consentrecord/",
                 "/admin/compliance/datasubjectrequest/",
                 "/admin/compliance/datasubjectrequest/add/",
                 "/admin/compliance/securityincident/add/", "/admin/chat/chatsession/",
                 "/admin/chat/providerattempt/", "/admin/auditlog/logentry/",
                 "/admin/compliance/auditevent/overview/", "/admin/compliance/auditevent/verify/",
                 "/admin/compliance/auditevent/export/"]


def test_officer_pages_load_clean_at_1366_px(wide_page: Page, back_office):
    sign_in(wide_page, back_office, "dpo-ana")
    for path in OFFICER_PAGES:
        wide_page.goto(back_office["url"] + path)
        expect(wide_page.locator("#content")).to_be_visible()
        assert_clean(wide_page)


def test_operations_pages_load_clean_and_never_show_text(wide_page: Page, back_office):
    sign_in(wide_page, back_office, "ops-bia")
    for path in ("/admin/", "/admin/chat/chatsession/", "/admin/chat/providerattempt/"):
        wide_page.goto(back_office["url"] + path)
        expect(wide_page.locator("#content")).to_be_visible()
        assert_clean(wide_page)
    wide_page.goto(session_url(back_office))
    expect(wide_page.locator("#content")).to_contain_text("openai")
    content = wide_page.locator("#content").inner_text()
    assert "Joana" not in content and "[NOME_1]" not in content
    expect(wide_page.get_by_role("link", name="Revelar dados pessoais")).to_have_count(0)
    assert_clean(wide_page)
    response = wide_page.goto(session_url(back_office).replace("/change/", "/reveal/"))
    assert response.status == 403


def test_personal_data_is_masked_until_revealed_with_a_reason_and_the_reveal_is_audited(
        wide_page: Page, back_office):
    sign_in(wide_page, back_office, "dpo-ana")
    wide_page.goto(session_url(back_office))
    content = wide_page.locator("#content")
    expect(content).to_contain_text("Paciente [NOME_1], CPF [CPF_1]")
    assert "Joana" not in content.inner_text()
    expect(content).to_contain_text("<p>Resposta para [NOME_1]</p>")  # text, not markup
    assert_clean(wide_page)

    wide_page.get_by_role("link", name="Revelar dados pessoais").click()
    wide_page.get_by_label("Motivo").select_option("dsr")
    wide_page.get_by_label("Número da solicitação, do incidente ou do protocolo").fill("DSR-7")
    wide_page.get_by_role("button", name="Revelar e registrar o motivo").click()
    expect(content).to_contain_text("Paciente Joana Prado, CPF 529.982.247-25")
    expect(content).to_contain_text("Dados pessoais revelados somente nesta visualização")
    assert_clean(wide_page)
    wide_page.goto(session_url(back_office))  # the clear text was for that one view
    expect(content).to_contain_text("Paciente [NOME_1], CPF [CPF_1]")
    assert "Joana" not in content.inner_text()

    wide_page.goto(back_office["url"] + "/admin/compliance/auditevent/?event_type=pii_revealed")
    rows = wide_page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("dados pessoais revelados a um encarregado")
    expect(rows.first).to_contain_text("dpo-ana")
    expect(rows.first).to_contain_text("Maria S. (Clínica do Back-office)")
    expect(rows.first).to_contain_text('"reference": "DSR-7"')
    assert_clean(wide_page)


def test_the_export_downloads_and_its_manifest_verifies_with_the_documented_command(
        wide_page: Page, back_office, tmp_path):
    sign_in(wide_page, back_office, "dpo-ana")
    wide_page.goto(back_office["url"] + "/admin/compliance/auditevent/verify/")
    wide_page.get_by_role("button", name="Executar a verificação").click()
    expect(wide_page.locator("#np-chain-result")).to_contain_text("Íntegra")
    assert_clean(wide_page)
    wide_page.goto(back_office["url"] + "/admin/compliance/auditevent/export/")
    today = wide_page.evaluate("new Date().toLocaleDateString('sv-SE')")  # YYYY-MM-DD, local
    wide_page.locator("#id_start").fill(today)
    wide_page.get_by_label("até (inclusive)").fill(today)
    wide_page.get_by_label("formato").select_option("json")
    with wide_page.expect_download() as download_info:
        wide_page.get_by_role("button", name="Exportar").click()
    archive_path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(archive_path)
    assert re.fullmatch(r"audit-trail-all-clinics-\d{4}-\d{2}-\d{2}-\d{4}-\d{2}-\d{2}\.zip",
                        archive_path.name)
    with zipfile.ZipFile(archive_path) as archive:
        archive.extractall(tmp_path)
        data_name = next(n for n in archive.namelist() if n != "manifest.json")
    command = [sys.executable, "manage.py", "verify_audit_export", str(tmp_path / data_name),
               str(tmp_path / "manifest.json")]
    result = subprocess.run(command, cwd=ROOT, env=back_office["env"], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "export OK" in result.stdout and "export OK: 0 events" not in result.stdout
    (tmp_path / data_name).write_bytes((tmp_path / data_name).read_bytes().replace(
        b"audit_chain_verified", b"audit_trail_exported", 1))
    tampered = subprocess.run(command, cwd=ROOT, env=back_office["env"], capture_output=True,
                              text=True, timeout=120)
    assert tampered.returncode == 1
    assert_clean(wide_page)


def test_a_request_filed_by_picking_the_person_shows_its_due_date(wide_page: Page,
                                                                   back_office):
    sign_in(wide_page, back_office, "dpo-ana")
    wide_page.goto(back_office["url"] + "/admin/compliance/datasubjectrequest/add/")
    wide_page.locator(".field-user .select2-selection").click()
    wide_page.locator(".select2-search__field").fill("Souza")
    option = wide_page.locator(".select2-results__option", has_text="msouza-bo")
    expect(option).to_have_count(1)
    option.click()
    wide_page.get_by_label("Tipo").select_option("access")
    wide_page.locator("#id_received_at_0").fill("03/12/2026")
    wide_page.locator("#id_received_at_1").fill("09:00:00")
    wide_page.locator("input[name=_save]").click()
    expect(wide_page.locator(".messagelist")).to_contain_text(
        "Solicitação registrada para Maria S.; a resposta vence em 18/12/2026.")
    row = wide_page.locator("#result_list tbody tr", has_text="Maria S.")
    expect(row).to_contain_text("18 de Dezembro de 2026")
    assert_clean(wide_page)


def test_an_incident_deadline_skips_a_national_holiday(wide_page: Page, back_office):
    sign_in(wide_page, back_office, "dpo-ana")
    wide_page.goto(back_office["url"] + "/admin/compliance/securityincident/add/")
    wide_page.get_by_label("O que aconteceu").fill("Chave de API exposta em log")
    # Known on Wednesday 18/11/2026; Friday 20/11 is Consciência Negra (national).
    wide_page.locator("#id_became_known_at_0").fill("18/11/2026")
    wide_page.locator("#id_became_known_at_1").fill("10:00:00")
    wide_page.locator("input[name=_save]").click()
    expect(wide_page.locator(".messagelist")).to_contain_text(
        "a ANPD deve ser comunicada até 24/11/2026 23:59")
    assert_clean(wide_page)
