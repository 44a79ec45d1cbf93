"""Chain verification and export of the trail in the admin: results shown, both actions
audited, and an export whose signed manifest verifies offline and fails when tampered."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from compliance import audit
from compliance.audit import Event
from compliance.export_check import check_export
from compliance.models import AuditEvent, SecurityIncident

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "/admin/compliance/auditevent/verify/"
EXPORT = "/admin/compliance/auditevent/export/"


@pytest.fixture
def trail(make_user, make_session, django_capture_on_commit_callbacks):
    """Events of two clinics."""
    from clinics.models import Clinic

    with django_capture_on_commit_callbacks(execute=True):
        first = make_user(username="subject-a")
        make_session(first, exchanges=1)
        other = Clinic.objects.create(name="Clínica Outra")
        second = make_user(username="subject-b", member_of=other)
        make_session(second, exchanges=1)
    return {"a": first, "b": second}


def _tamper(event_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE compliance_auditevent DISABLE TRIGGER USER")
        cursor.execute("UPDATE compliance_auditevent SET metadata = '{\"x\": 1}' "
                       "WHERE id = %s", [event_id])
        cursor.execute("ALTER TABLE compliance_auditevent ENABLE TRIGGER USER")


@pytest.mark.django_db
def test_officers_run_the_verification_and_it_is_audited(client, officer, trail):
    client.force_login(officer)
    assert client.get(VERIFY).status_code == 200
    events = AuditEvent.objects.count()
    response = client.post(VERIFY)
    status = response.context["status"]
    assert status.ok and status.report.checked == events and status.events == events
    page = response.content.decode()
    assert "Intact" in page and "No anchors are recorded yet" in page
    event = AuditEvent.objects.get(event_type=Event.AUDIT_CHAIN_VERIFIED)
    assert event.actor_id == officer.pk
    assert event.metadata == {"ok": True, "checked": events, "broken_at": None, "anchors": 0}


@pytest.mark.django_db
def test_a_broken_chain_is_shown_with_the_event_where_it_breaks(client, officer, trail):
    victim = AuditEvent.objects.order_by("id").first().id
    _tamper(victim)
    client.force_login(officer)
    response = client.post(VERIFY)
    assert not response.context["status"].ok
    assert f"event no. {victim}" in response.content.decode()
    recorded = AuditEvent.objects.get(event_type=Event.AUDIT_CHAIN_VERIFIED)
    assert recorded.metadata["ok"] is False and recorded.metadata["broken_at"] == victim


@pytest.mark.django_db
def test_the_page_shows_the_last_anchor_and_an_anchor_that_no_longer_holds(
        client, officer, trail, anchor_dir):
    anchored = audit.audit_chain_anchor()
    client.force_login(officer)
    status = client.post(VERIFY).context["status"]
    assert status.ok and status.last_anchor_at is not None
    assert status.anchors[0].anchors == 1
    (path,) = anchor_dir.iterdir()
    record = json.loads(path.read_text())
    record["last_id"] = 1  # an anchor altered after signing: the chain itself still holds
    with path.open("a") as out:
        out.write(json.dumps(record) + "\n")
    status = client.post(VERIFY).context["status"]
    assert status.report.ok and not status.ok
    assert "signature does not match" in status.anchors[0].detail
    assert anchored is not None
    incident = SecurityIncident.objects.get(source=SecurityIncident.Source.CHAIN_VERIFICATION)
    assert "signature does not match" in incident.description


def _download(client, **data) -> tuple[bytes, dict, str]:
    today = timezone.localdate().isoformat()
    response = client.post(EXPORT, {"start": today, "end": today, "clinic": "",
                                     "file_format": "csv", **data})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip", \
        response.content[:500]
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = archive.namelist()
    data_name = next(name for name in names if name != "manifest.json")
    return archive.read(data_name), json.loads(archive.read("manifest.json")), data_name


@pytest.mark.django_db
@pytest.mark.parametrize("file_format", ["csv", "json"])
def test_the_export_of_a_clinic_verifies_offline_and_is_audited(client, officer, trail,
                                                                settings, tmp_path,
                                                                file_format):
    settings.AUDIT_EXPORT_KEY = "k" * 40
    clinic_id = trail["a"].clinic_membership.clinic_id
    expected = AuditEvent.objects.filter(clinic_id=clinic_id).count()
    client.force_login(officer)
    content, manifest, name = _download(client, clinic=clinic_id, file_format=file_format)
    assert manifest["count"] == expected > 0 and manifest["clinic_id"] == clinic_id
    assert check_export(content=content, manifest=manifest, key="k" * 40).ok
    (tmp_path / name).write_bytes(content)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    call_command("verify_audit_export", str(tmp_path / name), str(tmp_path / "manifest.json"))
    # The Django-free checker, as an auditor runs it.
    offline = subprocess.run(
        [sys.executable, "-m", "compliance.export_check", str(tmp_path / name),
         str(tmp_path / "manifest.json")],
        cwd=ROOT, env={"AUDIT_EXPORT_KEY": "k" * 40, "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60)
    assert offline.returncode == 0, offline.stderr
    event = AuditEvent.objects.get(event_type=Event.AUDIT_TRAIL_EXPORTED)
    assert event.actor_id == officer.pk and event.clinic_id == clinic_id
    assert event.metadata["count"] == expected and event.metadata["sha256"] == manifest["sha256"]


@pytest.mark.django_db
def test_a_tampered_export_or_a_wrong_key_fails_the_check(client, officer, trail, settings,
                                                          tmp_path):
    settings.AUDIT_EXPORT_KEY = "k" * 40
    client.force_login(officer)
    content, manifest, name = _download(client)
    edited = content.replace(b"consent_granted", b"consent_revoked", 1)
    assert edited != content
    result = check_export(content=edited, manifest=manifest, key="k" * 40)
    assert not result.ok and any("SHA-256" in p for p in result.problems)
    assert any("does not match its hash" in p for p in result.problems)
    assert not check_export(content=content, manifest=manifest, key="other" * 8).ok
    forged = {**manifest, "count": manifest["count"] + 1}
    assert not check_export(content=content, manifest=forged, key="k" * 40).ok
    (tmp_path / name).write_bytes(edited)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CommandError, match="NOT verified"):
        call_command("verify_audit_export", str(tmp_path / name),
                     str(tmp_path / "manifest.json"))


@pytest.mark.django_db
def test_the_export_form_refuses_a_reversed_period(client, officer, trail):
    client.force_login(officer)
    response = client.post(EXPORT, {"start": "2026-12-10", "end": "2026-12-01",
                                    "file_format": "csv"})
    assert response.status_code == 200 and "end" in response.context["form"].errors
    assert not AuditEvent.objects.filter(event_type=Event.AUDIT_TRAIL_EXPORTED).exists()


@pytest.mark.django_db
def test_operations_staff_can_neither_verify_nor_export(client, ops, trail):
    client.force_login(ops)
    for url in (VERIFY, EXPORT, reverse("admin:compliance_auditevent_person_search")):
        assert client.get(url).status_code == 403
        assert client.post(url).status_code == 403
