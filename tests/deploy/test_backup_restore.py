"""scripts/backup-db.sh and scripts/restore-db.sh: a backup taken while clinicians chat
restores into a fresh database with sessions, messages, consent and the audit chain
intact, and its message text is readable only with the same ENCRYPTION_KEY."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from compliance.encryption import DecryptionError, decrypt_text
from tests.deploy import support

CPF = "529.982.247-25"  # synthetic, valid check digits: redacted, mapped, encrypted
MESSAGES_PER_SESSION = 4
TRAFFIC_WORKERS = 2
# Long enough that pg_dump takes its snapshot while this answer is still streaming,
# short of AI_PROVIDER_TIMEOUT (no failover).
STALL_MS = 5000


@dataclass
class Exchange:
    session_id: str
    user_message_id: str
    assistant_message_id: str
    content: str
    started_at: float
    finished_at: float


@dataclass
class Traffic:
    """Workers sending chat messages over the REST API until told to stop."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    exchanges: list[Exchange] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def worker(self, number: int) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=60) as http:
                tokens = http.post("/api/v1/auth/token/", json={
                    "username": support.SMOKE_USERNAME, "password": support.SMOKE_PASSWORD})
                tokens.raise_for_status()
                http.headers["Authorization"] = f"Bearer {tokens.json()['access']}"
                sent = 0
                while not self.stop.is_set():
                    if sent % MESSAGES_PER_SESSION == 0:
                        session = http.post("/api/v1/ai-chat/sessions/",
                                            json={"title": f"Retorno {number}-{sent}"})
                        session.raise_for_status()
                        session_id = session.json()["id"]
                        with self.lock:
                            self.sessions.append(session_id)
                    self._send(http, session_id, f"Paciente CPF {CPF}, retorno {number}-{sent}.")
                    sent += 1
        except Exception as exc:  # reported by the test, which fails on any error
            with self.lock:
                self.errors.append(f"worker {number}: {exc!r}")

    def _send(self, http: httpx.Client, session_id: str, content: str) -> None:
        started = time.monotonic()
        response = http.post(f"/api/v1/ai-chat/sessions/{session_id}/messages/",
                             json={"content": content, "client_id": str(uuid.uuid4())})
        if response.status_code != 201:
            raise AssertionError(f"message refused: {response.status_code} {response.text}")
        body = response.json()
        with self.lock:
            self.exchanges.append(Exchange(
                session_id=session_id, user_message_id=body["user_message"]["id"],
                assistant_message_id=body["assistant_message"]["id"], content=content,
                started_at=started, finished_at=time.monotonic()))

    def finished_between(self, start: float, end: float) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if start <= e.finished_at <= end]

    def started_after(self, moment: float) -> list[Exchange]:
        with self.lock:
            return [e for e in self.exchanges if e.started_at > moment]

    def count(self) -> int:
        with self.lock:
            return len(self.exchanges)


def _script(name: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [str(support.SCRIPTS / name), *args], env=env, capture_output=True, text=True,
        timeout=120, check=False)


def _ensure_consent(url: str) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        tokens = http.post("/api/v1/auth/token/", json={
            "username": support.SMOKE_USERNAME, "password": support.SMOKE_PASSWORD})
        tokens.raise_for_status()
        auth = {"Authorization": f"Bearer {tokens.json()['access']}"}
        status = http.get("/api/v1/compliance/consents/", headers=auth).json()
        if status["consent_required"]:
            granted = http.post("/api/v1/compliance/consents/", headers=auth,
                                json={"purpose": "ai_chat", "accepted": True})
            assert granted.status_code == 201, granted.text


def _rows(database: str, statement: str, params: list | None = None) -> dict:
    return {row[0]: row[1:] for row in support.query(database, statement, params)}


MESSAGES_SQL = ("SELECT id::text, role, status, content, redacted_content, reply_to_id::text, "
                "session_id::text FROM chat_chatmessage")


def test_it_restores_a_backup_taken_mid_traffic(deployment, simulator, tmp_path, settings):
    source = deployment.database
    _ensure_consent(deployment.url)
    consents_before = _rows(source, "SELECT id, revoked_at FROM compliance_consentrecord")
    traffic = Traffic(url=deployment.url)
    workers = [threading.Thread(target=traffic.worker, args=(n,), daemon=True)
               for n in range(TRAFFIC_WORKERS)]
    for worker in workers:
        worker.start()
    try:
        support.wait_until(lambda: traffic.errors or traffic.count() >= 6, timeout=60,
                           what="chat traffic to flow")
        assert not traffic.errors, traffic.errors
        # The next answer stalls mid-stream: the backup starts while it is in flight.
        simulator.set_fault("openai", stall_after_chunks=1, stall_ms=STALL_MS, times=1)
        support.wait_until(lambda: traffic.errors or not simulator.faults(), timeout=30,
                           what="an answer to stall mid-stream")
        backup_started = time.monotonic()
        direct = support.database_url(source)
        backup = _script("backup-db.sh", str(tmp_path / "backups" / "neonpro.dump"),
                         env=support.subprocess_env(BACKUP_DATABASE_URL=direct))
        backup_finished = time.monotonic()
        assert backup.returncode == 0, backup.stdout + backup.stderr
        support.wait_until(
            lambda: traffic.errors or len(traffic.started_after(backup_finished)) >= 2,
            timeout=60, what="traffic to go on after the backup")
    finally:
        traffic.stop.set()

    restored = support.unique_database_name("restored")
    try:
        restore = _script("restore-db.sh", "--create", str(tmp_path / "backups" / "neonpro.dump"),
                          support.database_url(restored), env=support.subprocess_env())
        assert restore.returncode == 0, restore.stdout + restore.stderr
        assert "same ENCRYPTION_KEY" in restore.stdout
        chain = support.manage("verify_audit_chain", env=support.subprocess_env(
            DEBUG="true", DATABASE_URL=support.database_url(restored)))
        for worker in workers:
            worker.join(timeout=60)
            assert not worker.is_alive()
        assert not traffic.errors, traffic.errors

        _assert_restored_mid_traffic(traffic, source, restored, backup_started, backup_finished)
        _assert_readable_only_with_the_same_key(settings, restored)
        consents = _rows(restored, "SELECT id, revoked_at FROM compliance_consentrecord")
        assert consents == consents_before
        events = support.query(restored, "SELECT count(*), max(id) FROM compliance_auditevent")[0]
        assert f"audit chain OK: {events[0]} events verified" in chain.stdout
        later = support.query(source, "SELECT max(id) FROM compliance_auditevent")[0][0]
        assert events[1] < later  # the trail went on after the snapshot
    finally:
        support.drop_database(restored)


def _assert_restored_mid_traffic(traffic: Traffic, source: str, restored: str,
                                 backup_started: float, backup_finished: float) -> None:
    messages = _rows(restored, MESSAGES_SQL)
    now = _rows(source, MESSAGES_SQL)
    before = traffic.finished_between(0, backup_started)
    after = traffic.started_after(backup_finished)
    assert before and after
    for exchange in before:  # acknowledged before the backup: byte for byte in it
        for message_id in (exchange.user_message_id, exchange.assistant_message_id):
            assert messages[message_id] == now[message_id]
        assert messages[exchange.assistant_message_id][1] == "complete"
    for exchange in after:  # sent after the snapshot: not in it
        assert exchange.user_message_id not in messages
    # An answer was streaming when the snapshot was taken; it completed afterwards.
    in_flight = [mid for mid, row in messages.items() if row[0] == "assistant" and
                 row[1] == "streaming" and now[mid][1] == "complete"]
    assert in_flight, "no answer was in flight at backup time"
    # Consistent: every answer with its question, every message with its session.
    users = {mid for mid, row in messages.items() if row[0] == "user"}
    replies = {row[4] for row in messages.values() if row[0] == "assistant"}
    assert replies == users
    sessions = _rows(restored, "SELECT id::text, status FROM chat_chatsession")
    assert {row[5] for row in messages.values()} <= set(sessions)
    assert {e.session_id for e in before} <= set(sessions)


def _assert_readable_only_with_the_same_key(settings, restored: str) -> None:
    messages = _rows(restored, MESSAGES_SQL)
    sessions = support.query(restored, "SELECT pii_mapping, title FROM chat_chatsession s "
                                       "WHERE EXISTS (SELECT 1 FROM chat_chatmessage m "
                                       "WHERE m.session_id = s.id)")
    assert sessions
    settings.ENCRYPTION_KEYS = [support.ENCRYPTION_KEY]
    for row in messages.values():
        if row[0] == "user":
            assert CPF in decrypt_text(row[2])  # what the clinician typed
            assert CPF not in decrypt_text(row[3])  # what left for the provider
    for mapping, title in sessions:  # placeholders can still be re-identified
        assert CPF in json.loads(decrypt_text(mapping)).values()
        assert decrypt_text(title).startswith("Retorno")
    # A restore run with another key reads nothing.
    settings.ENCRYPTION_KEYS = [support.OTHER_ENCRYPTION_KEY]
    for ciphertext in [row[2] for row in messages.values()] + [m for m, _ in sessions]:
        with pytest.raises(DecryptionError):
            decrypt_text(ciphertext)


@pytest.fixture(scope="module")
def template_backup(migrated_template, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("backup") / "template.dump"
    result = _script("backup-db.sh", str(path), env=support.subprocess_env(
        DATABASE_URL=support.database_url(migrated_template)))
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def test_it_refuses_to_restore_into_a_database_that_is_not_empty(template_backup,
                                                                  clone_database):
    target = clone_database("not_empty")
    tables = support.query(target, "SELECT count(*) FROM pg_tables WHERE schemaname='public'")

    result = _script("restore-db.sh", str(template_backup), support.database_url(target),
                     env=support.subprocess_env())

    assert result.returncode == 3
    assert "not empty" in result.stderr
    assert support.query(target, "SELECT count(*) FROM pg_tables WHERE schemaname='public'") \
        == tables


def test_it_refuses_a_backup_that_does_not_match_its_checksum(template_backup, tmp_path):
    tampered = tmp_path / template_backup.name
    data = bytearray(template_backup.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    (tmp_path / f"{template_backup.name}.sha256").write_bytes(
        Path(f"{template_backup}.sha256").read_bytes())
    target = support.unique_database_name("never_created")

    result = _script("restore-db.sh", "--create", str(tampered), support.database_url(target),
                     env=support.subprocess_env())

    assert result.returncode == 3 and "checksum" in result.stderr
    assert support.query("postgres", "SELECT count(*) FROM pg_database WHERE datname = %s",
                         [target]) == [(0,)]


def test_it_refuses_to_back_up_without_a_database_url(tmp_path):
    env = support.subprocess_env()
    for name in ("DATABASE_URL", "DATABASE_DIRECT_URL", "BACKUP_DATABASE_URL"):
        env.pop(name, None)

    result = _script("backup-db.sh", str(tmp_path / "x.dump"), env=env)

    assert result.returncode == 2 and "DATABASE_URL" in result.stderr
    assert not (tmp_path / "x.dump").exists()
