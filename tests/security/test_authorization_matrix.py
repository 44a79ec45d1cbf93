"""Who may do what: every URL pattern, WebSocket route, HTTP method and role.

The routes are walked from the URL resolver and the WebSocket router; a route
missing from the matrix fails the test, so a new endpoint cannot ship without
deciding who may reach it. Model admin pages are covered by one rule per
model (what each staff role may view, add, change, delete) applied to all six
of its URL patterns.

Roles: anonymous, a clinician of clinic A (who owns the objects in the paths),
a clinician of clinic B, a compliance officer, an operations engineer and a
superuser. Officers, operations and the superuser belong to no clinic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLResolver, get_resolver

from tests.chat.helpers import bearer, ws_headers

ROLES = ("anonymous", "clinician_a", "clinician_b", "officer", "ops", "superuser")
STAFF = ("officer", "ops", "superuser")
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ADMIN_METHODS = ("GET", "POST")

pytestmark = pytest.mark.django_db(transaction=True)


def roles(anonymous, clinician_a, clinician_b=None, officer=None, ops=None, superuser=None):
    """Expected status per role; omitted roles get clinician_a's."""
    values = [anonymous, clinician_a, clinician_b, officer, ops, superuser]
    return {role: (value if value is not None else clinician_a)
            for role, value in zip(ROLES, values, strict=True)}


def signed_in(status: int, anonymous: int = 401, **others) -> dict[str, int]:
    """`status` for every signed-in role (unless named), `anonymous` for the anonymous."""
    return {role: others.get(role, anonymous if role == "anonymous" else status)
            for role in ROLES}


def only_get(get: dict[str, int], other: dict[str, int]) -> dict[str, dict[str, int]]:
    return {method: get if method == "GET" else other for method in METHODS}


# --- The matrix: non-admin routes --------------------------------------------------------
#
# route pattern -> (concrete path, {method: {role: status}})
# Paths name objects of clinician A: {session} (an active session with messages),
# {closable} (a session the close endpoint may close).

API_405 = signed_in(405)
NO_SESSION = 404  # someone else's session is indistinguishable from a missing one

ROUTES: dict[str, tuple[str, dict[str, dict[str, int]]]] = {
    "api/schema/": ("/api/schema/", only_get(signed_in(200), API_405)),
    "api/v1/auth/token/": ("/api/v1/auth/token/", {
        **{m: signed_in(405, anonymous=405) for m in METHODS},
        "POST": signed_in(400, anonymous=400),  # no credentials in the body
    }),
    "api/v1/auth/token/refresh/": ("/api/v1/auth/token/refresh/", {
        **{m: signed_in(405, anonymous=405) for m in METHODS},
        "POST": signed_in(400, anonymous=400),
    }),
    "api/v1/ai-chat/sessions/": ("/api/v1/ai-chat/sessions/", {
        **{m: API_405 for m in METHODS},
        "GET": signed_in(200),  # each sees their own list (checked below)
        # Creating needs consent and a clinic: only the clinicians have them.
        "POST": roles(401, 201, 201, 403, 403, 403),
    }),
    # Runs last but for sign-out and consent (see LAST): the owner's DELETE removes it.
    "api/v1/ai-chat/sessions/<uuid:session_id>/": ("/api/v1/ai-chat/sessions/{session}/", {
        **{m: API_405 for m in METHODS},
        "GET": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        "PATCH": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        "DELETE": roles(401, 204, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
    }),
    "api/v1/ai-chat/sessions/<uuid:session_id>/export/": (
        "/api/v1/ai-chat/sessions/{session}/export/?as=md", {
            **{m: API_405 for m in METHODS},
            "GET": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        }),
    "api/v1/ai-chat/messages/<uuid:message_id>/feedback/": (
        "/api/v1/ai-chat/messages/{answer}/feedback/", {
            **{m: API_405 for m in METHODS},
            "POST": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        }),
    "api/v1/ai-chat/sessions/<uuid:session_id>/close/": (
        "/api/v1/ai-chat/sessions/{closable}/close/", {
            **{m: API_405 for m in METHODS},
            "POST": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        }),
    "api/v1/ai-chat/sessions/<uuid:session_id>/messages/": (
        "/api/v1/ai-chat/sessions/{session}/messages/", {
            **{m: API_405 for m in METHODS},
            "GET": roles(401, 200, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
            "POST": roles(401, 201, NO_SESSION, NO_SESSION, NO_SESSION, NO_SESSION),
        }),
    "api/v1/compliance/consents/": ("/api/v1/compliance/consents/", {
        **{m: API_405 for m in METHODS},
        "GET": signed_in(200),
        "POST": signed_in(400),  # no purpose in the body
    }),
    # Only one's own consent can be revoked: the path names a purpose, not a person.
    "api/v1/compliance/consents/<str:purpose>/": ("/api/v1/compliance/consents/{purpose}/", {
        **{m: API_405 for m in METHODS},
        "DELETE": roles(401, 204, 204, 404, 404, 404),
    }),
    "api/v1/compliance/my-data/": ("/api/v1/compliance/my-data/",
                                   {**{m: API_405 for m in METHODS}, "GET": signed_in(200)}),
    "api/v1/compliance/requests/": ("/api/v1/compliance/requests/", {
        **{m: API_405 for m in METHODS},
        "GET": signed_in(200),
        "POST": signed_in(400),
    }),
    # Operations endpoints: status for everyone, details and metrics for staff/operations.
    "api/health": ("/api/health", only_get(signed_in(200, anonymous=200),
                                           signed_in(405, anonymous=405))),
    "api/health/live": ("/api/health/live", only_get(signed_in(200, anonymous=200),
                                                     signed_in(405, anonymous=405))),
    "api/health/ready": ("/api/health/ready", only_get(signed_in(200, anonymous=200),
                                                       signed_in(405, anonymous=405))),
    "api/metrics": ("/api/metrics", only_get(roles(401, 401, 401, 200, 200, 200),
                                             signed_in(405, anonymous=405))),
    "api/v1/ai-chat/health": ("/api/v1/ai-chat/health",
                              only_get(signed_in(200, anonymous=200),
                                       signed_in(405, anonymous=405))),
    # The clinician web UI.
    "login/": ("/login/", {
        **{m: signed_in(302, anonymous=405) for m in METHODS},
        "GET": signed_in(302, anonymous=200),  # signed-in users go on to the chat
        "POST": signed_in(302, anonymous=200),  # the form again, with its errors
        "PUT": signed_in(302, anonymous=200),  # Django's form views treat PUT as POST
    }),
    "logout/": ("/logout/", {
        **{m: signed_in(405, anonymous=405) for m in METHODS},
        "POST": signed_in(302, anonymous=302),
    }),
    # A plain redirect to the chat, whatever the method: it reads and writes nothing.
    "": ("/", {m: signed_in(302, anonymous=302) for m in METHODS}),
    # A permanent redirect to the static icon, likewise.
    "favicon.ico": ("/favicon.ico", {m: signed_in(301, anonymous=301) for m in METHODS}),
    "chat/": ("/chat/", only_get(roles(302, 200, 200, 403, 403, 403),
                                 signed_in(405, anonymous=302))),
    "chat/consent/": ("/chat/consent/", {
        **{m: signed_in(405, anonymous=302) for m in METHODS},
        "GET": signed_in(200, anonymous=302),
        "POST": signed_in(302, anonymous=302),  # unticked box: back to the form
    }),
    "chat/consent/revoke/": ("/chat/consent/revoke/", {
        **{m: signed_in(405, anonymous=302) for m in METHODS},
        "POST": signed_in(302, anonymous=302),
    }),
    "chat/privacy/": ("/chat/privacy/", only_get(signed_in(200, anonymous=302),
                                                 signed_in(405, anonymous=302))),
    "chat/<uuid:session_id>/": ("/chat/{session}/", only_get(
        roles(302, 200, 404, 404, 404, 404), signed_in(405, anonymous=302))),
}

# Requests that change what later requests see run last, in this order.
LAST = ["api/v1/ai-chat/sessions/<uuid:session_id>/",
        "api/v1/compliance/consents/<str:purpose>/", "chat/consent/revoke/", "logout/"]

BODIES = {
    "api/v1/ai-chat/sessions/<uuid:session_id>/messages/": {"content": "Olá"},
    "api/v1/ai-chat/sessions/<uuid:session_id>/": {"title": "Renomeada"},
    "api/v1/ai-chat/messages/<uuid:message_id>/feedback/": {"rating": "up"},
}


# --- The matrix: admin -------------------------------------------------------------------
#
# What each staff role may do per model admin: v(iew) a(dd) c(hange) d(elete).
# Nobody edits or deletes audit data, sessions are never added or deleted in the
# admin, and operations never see compliance records.

MODEL_ACCESS: dict[str, dict[str, str]] = {
    "auth/group": {"officer": "", "ops": "", "superuser": "vacd"},
    # Accounts are anonymised by a data-subject erasure, never deleted (append-only change log).
    "auth/user": {"officer": "v", "ops": "", "superuser": "vac"},
    "clinics/clinic": {"officer": "v", "ops": "v", "superuser": "vacd"},
    "clinics/clinicmembership": {"officer": "v", "ops": "v", "superuser": "vacd"},
    "chat/chatsession": {"officer": "vc", "ops": "v", "superuser": "vc"},
    "chat/providerattempt": {"officer": "v", "ops": "v", "superuser": "v"},
    # Feedback comments are free text: officers only, read-only for everyone.
    "chat/messagefeedback": {"officer": "v", "ops": "", "superuser": "v"},
    "compliance/auditevent": {"officer": "v", "ops": "", "superuser": "v"},
    "auditlog/logentry": {"officer": "v", "ops": "", "superuser": "v"},
    "compliance/consentrecord": {"officer": "v", "ops": "", "superuser": "v"},
    # The object in the path is a published version: nobody edits it any more.
    "compliance/termsversion": {"officer": "va", "ops": "", "superuser": "va"},
    "compliance/datasubjectrequest": {"officer": "vac", "ops": "", "superuser": "vac"},
    # The object in the path is an open incident; closed ones are read-only.
    "compliance/securityincident": {"officer": "vac", "ops": "", "superuser": "vac"},
}


# Data-subject requests: only the resolution note is editable, and it may be blank.
CHANGE_POST = {"compliance/datasubjectrequest": 302}


def _admin_model_routes(model: str, access: dict[str, str]) -> dict[str, tuple]:
    """The six URL patterns of one model admin, with the statuses its rule implies."""
    non_staff = {"anonymous": 302, "clinician_a": 302, "clinician_b": 302}

    def rule(letters: str, ok: int, get_ok: int | None = None) -> dict[str, dict[str, int]]:
        by_method = {}
        for method in ADMIN_METHODS:
            status = {role: (get_ok if method == "GET" and get_ok else ok)
                      if any(letter in access[role] for letter in letters) else 403
                      for role in STAFF}
            by_method[method] = {**non_staff, **status}
        return by_method

    base = f"admin/{model}/"
    return {
        base: (f"/{base}", rule("vc", 200)),
        f"{base}add/": (f"/{base}add/", rule("a", 200)),
        f"{base}<path:object_id>/history/": (f"/{base}{{{model}}}/history/", rule("vc", 200)),
        f"{base}<path:object_id>/delete/": (f"/{base}{{{model}}}/delete/", rule("d", 200)),
        # A POST with no fields: the form again with its errors, or (when every editable
        # field may be blank) saved and redirected, for those who may change.
        f"{base}<path:object_id>/change/": (
            f"/{base}{{{model}}}/change/",
            {"GET": rule("vc", 200)["GET"],
             "POST": {**non_staff, **{role: CHANGE_POST.get(model, 200) if "c" in access[role]
                                      else 403 for role in STAFF}}}),
        f"{base}<path:object_id>/": (f"/{base}{{{model}}}/",
                                     {m: dict.fromkeys(ROLES, 302) for m in ADMIN_METHODS}),
    }


def _staff(status: int, non_staff: int = 302) -> dict[str, int]:
    return {role: status if role in STAFF else non_staff for role in ROLES}


ADMIN_ROUTES: dict[str, tuple[str, dict[str, dict[str, int]]]] = {
    "admin/": ("/admin/", {"GET": _staff(200), "POST": _staff(200)}),
    # Signed-in non-staff see the form with a "not authorised" note; staff go on.
    "admin/login/": ("/admin/login/", {"GET": {**_staff(302, 200)},
                                       "POST": dict.fromkeys(ROLES, 200)}),
    "admin/logout/": ("/admin/logout/", {"GET": _staff(405), "POST": _staff(302)}),
    "admin/password_change/": ("/admin/password_change/",
                               {"GET": _staff(200), "POST": _staff(200)}),
    "admin/password_change/done/": ("/admin/password_change/done/",
                                    {"GET": _staff(200), "POST": _staff(405)}),
    # Without app, model and field the autocomplete refuses everyone.
    "admin/autocomplete/": ("/admin/autocomplete/", {"GET": _staff(403), "POST": _staff(405)}),
    "admin/jsi18n/": ("/admin/jsi18n/", {"GET": _staff(200), "POST": _staff(405)}),
    "admin/r/<path:content_type_id>/<path:object_id>/": (
        "/admin/r/{session_type}/{session}/", {"GET": _staff(404), "POST": _staff(404)}),
    "admin/^(?P<app_label>auth|clinics|chat|compliance|auditlog)/$": (
        "/admin/compliance/", {m: {**_staff(200), "ops": 404} for m in ADMIN_METHODS}),
    "admin/(?P<url>.*)$": ("/admin/no-such-page/", {m: _staff(404) for m in ADMIN_METHODS}),
    "admin/auth/user/<id>/password/": (
        "/admin/auth/user/{auth/user}/password/",
        {m: {**_staff(403), "superuser": 200} for m in ADMIN_METHODS}),
    # Officers' tools: staff who may read the audit trail (officers, superuser) only.
    "admin/compliance/auditevent/person-search/": (
        "/admin/compliance/auditevent/person-search/",
        {m: {**_staff(302), "ops": 403} for m in ADMIN_METHODS}),
    "admin/compliance/auditevent/verify/": (
        "/admin/compliance/auditevent/verify/",
        {m: {**_staff(200), "ops": 403} for m in ADMIN_METHODS}),
    "admin/compliance/auditevent/overview/": (
        "/admin/compliance/auditevent/overview/",
        {m: {**_staff(200), "ops": 403} for m in ADMIN_METHODS}),
    "admin/compliance/auditevent/export/": (  # an empty POST: the form with its errors
        "/admin/compliance/auditevent/export/",
        {m: {**_staff(200), "ops": 403} for m in ADMIN_METHODS}),
    # Revealing a session's personal data: officers only (an empty POST: the form again).
    "admin/chat/chatsession/<path:object_id>/reveal/": (
        "/admin/chat/chatsession/{chat/chatsession}/reveal/",
        {m: {**_staff(200), "ops": 403} for m in ADMIN_METHODS}),
}
for _model, _access in MODEL_ACCESS.items():
    ADMIN_ROUTES.update(_admin_model_routes(_model, _access))

WEBSOCKET_ROUTES = {
    # Anonymous: 4401; anyone but the owner: 4404 (as if it did not exist); owner: open.
    r"^ws/ai-chat/(?P<session_id>[^/]+)/$": roles(4401, "open", 4404, 4404, 4404, 4404),
}


# --- The world -------------------------------------------------------------------------


@dataclass
class World:
    users: dict[str, object]
    path_values: dict[str, str]


@pytest.fixture
def world(make_user, ai_settings, settings) -> World:
    from chat.models import ChatSession, ProviderAttempt
    from chat.pipeline import accept, answer, sessions
    from clinics.models import Clinic, ClinicMembership
    from compliance import dsr
    from compliance import services as compliance_services
    from compliance.models import AuditEvent, ConsentRecord
    from compliance.roles import COMPLIANCE_OFFICERS, OPERATIONS

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MONITORING_TOKEN = "matrix-monitoring-token"
    terms = compliance_services.terms_version_publish(version=settings.CONSENT_TERMS_VERSION,
                                                      summary="current terms")
    clinician_a = make_user(username="matrix-clinician-a")
    clinic_b = Clinic.objects.create(name="Clínica B da matriz")
    clinician_b = make_user(username="matrix-clinician-b", member_of=clinic_b)
    user_model = get_user_model()
    officer = user_model.objects.create_user(username="matrix-officer", is_staff=True)
    officer.groups.add(Group.objects.get(name=COMPLIANCE_OFFICERS))
    ops = user_model.objects.create_user(username="matrix-ops", is_staff=True)
    ops.groups.add(Group.objects.get(name=OPERATIONS))
    superuser = user_model.objects.create_superuser(username="matrix-root")

    session = sessions.session_create(user=clinician_a, title="Paciente")
    from asgiref.sync import async_to_sync

    prepared = async_to_sync(accept.message_accept)(user=clinician_a, session_id=session.id,
                                                    content="Cuidados após preenchimento?")
    async_to_sync(_consume)(answer.answer_stream(prepared))
    sessions.message_feedback_record(user=clinician_a, message_id=prepared.assistant_message.id,
                                     rating="up", comment="Útil")
    closable = sessions.session_create(user=clinician_a, title="")
    request = dsr.dsr_create(user=clinician_a, request_type="access")
    from django.utils import timezone

    from compliance.incidents import incident_record
    from compliance.models import SecurityIncident

    incident = incident_record(incident=SecurityIncident(
        title="Chave de API exposta", became_known_at=timezone.now()), actor=officer)
    return World(
        users={"clinician_a": clinician_a, "clinician_b": clinician_b, "officer": officer,
               "ops": ops, "superuser": superuser},
        path_values={
            "session": str(session.id), "closable": str(closable.id), "purpose": "ai_chat",
            "answer": str(prepared.assistant_message.id),
            "chat/messagefeedback": str(prepared.assistant_message.id),
            "session_type": str(ContentType.objects.get_for_model(ChatSession).pk),
            "auth/group": str(Group.objects.get(name=OPERATIONS).pk),
            "auth/user": str(clinician_a.pk),
            "clinics/clinic": str(clinician_a.clinic_membership.clinic_id),
            "clinics/clinicmembership": str(ClinicMembership.objects.get(user=clinician_a).pk),
            "chat/chatsession": str(session.id),
            "chat/providerattempt": str(ProviderAttempt.objects.get(
                message__session=session).pk),
            "compliance/auditevent": str(AuditEvent.objects.order_by("id").first().pk),
            "auditlog/logentry": str(_log_entry_id()),
            "compliance/consentrecord": str(ConsentRecord.objects.get(user=clinician_a).pk),
            "compliance/termsversion": str(terms.pk),
            "compliance/datasubjectrequest": str(request.pk),
            "compliance/securityincident": str(incident.pk),
        },
    )


async def _consume(frames) -> None:
    async for _ in frames:
        pass


def _log_entry_id() -> int:
    from auditlog.models import LogEntry

    return LogEntry.objects.order_by("id").values_list("id", flat=True).first()


def _client(world: World, role: str) -> Client:
    client = Client()
    if role != "anonymous":
        user = world.users[role]
        client.force_login(user)
        client.defaults["HTTP_AUTHORIZATION"] = bearer(user)
    return client


# --- Walking the routes ------------------------------------------------------------------


def _walk(patterns, prefix: str = "") -> list[str]:
    found = []
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, route)
        else:
            found.append(route)
    return found


def test_it_has_a_matrix_entry_for_every_url_pattern_and_websocket_route():
    from chat.routing import websocket_urlpatterns

    walked = set(_walk(get_resolver().url_patterns))
    covered = set(ROUTES) | set(ADMIN_ROUTES)
    assert walked - covered == set(), "routes without an entry in the authorization matrix"
    assert covered - walked == set(), "matrix entries for routes that no longer exist"
    ws_walked = {str(pattern.pattern) for pattern in websocket_urlpatterns}
    assert ws_walked == set(WEBSOCKET_ROUTES)


def _request(client: Client, method: str, path: str, body: dict | None):
    kwargs = {"content_type": "application/json", "data": body or {}} \
        if method != "GET" else {}
    return getattr(client, method.lower())(path, **kwargs)


def _run(world: World, routes: dict, methods: tuple[str, ...]) -> list[str]:
    mismatches = []
    ordered = sorted(routes, key=lambda key: LAST.index(key) + 1 if key in LAST else 0)
    clients = {role: _client(world, role) for role in ROLES}
    for key, method, role in itertools.product(ordered, methods, ROLES):
        path_template, expected = routes[key]
        if method not in expected:
            continue
        path = path_template.format_map(world.path_values)
        response = _request(clients[role], method, path, BODIES.get(key))
        if response.status_code != expected[method][role]:
            mismatches.append(f"{method} {path} as {role}: expected "
                              f"{expected[method][role]}, got {response.status_code}")
        if key in ("logout/", "admin/logout/") and role != "anonymous":
            clients[role] = _client(world, role)  # signed out: sign in again
    return mismatches


def test_it_answers_every_api_and_page_route_as_the_matrix_says(world):
    mismatches = _run(world, ROUTES, METHODS)
    assert not mismatches, "\n".join(mismatches)


def test_it_answers_every_admin_route_as_the_matrix_says(world):
    mismatches = _run(world, ADMIN_ROUTES, ADMIN_METHODS)
    assert not mismatches, "\n".join(mismatches)


def test_it_lists_only_the_callers_own_sessions(world):
    listed = {role: {s["id"] for s in _client(world, role).get(
        "/api/v1/ai-chat/sessions/").json()} for role in ROLES if role != "anonymous"}
    assert world.path_values["session"] in listed["clinician_a"]
    for role in ("clinician_b", "officer", "ops", "superuser"):
        assert world.path_values["session"] not in listed[role]


def test_it_hides_message_text_from_operations_in_the_admin(world):
    session = world.path_values["session"]
    ops_page = _client(world, "ops").get(f"/admin/chat/chatsession/{session}/change/")
    officer_page = _client(world, "officer").get(f"/admin/chat/chatsession/{session}/change/")
    assert "Cuidados após preenchimento?" not in ops_page.content.decode()
    assert "Cuidados após preenchimento?" in officer_page.content.decode()


@pytest.mark.asyncio
async def test_it_opens_chat_websockets_only_for_the_sessions_owner(world):
    from neonpro.asgi import application

    (route, expected), = WEBSOCKET_ROUTES.items()
    for role in ROLES:
        user = world.users.get(role)
        communicator = WebsocketCommunicator(
            application, f"/ws/ai-chat/{world.path_values['session']}/",
            headers=ws_headers(user))
        await communicator.connect(timeout=5)
        if expected[role] == "open":
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from(timeout=5) == {"type": "pong"}, role
            await communicator.disconnect()
        else:
            closed = await communicator.receive_output(timeout=5)
            assert closed == {"type": "websocket.close", "code": expected[role]}, role
    await database_sync_to_async(lambda: None)()
