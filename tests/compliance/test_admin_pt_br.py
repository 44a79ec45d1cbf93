"""The back-office speaks pt-BR: every model, field and choice has a translated name, and
every admin page an officer can open shows no English label or raw value."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse
from django.utils import timezone, translation

from compliance.models import DataSubjectRequest, TermsVersion

# Words that only an untranslated label or value would show (none of them is Portuguese).
ENGLISH = frozenset("""
    created updated event type actor prev hold address outcome correlation success
    cancelled received due completed handled granted revoked purpose published summary
    members started estimated metadata matches current deadline overdue changes resource
    timestamp request consent message session clinic clinician role text title expires
    closed reason number details note user subject name active provider model latency
    cost first input output the of by at and or view change delete save search filter
    yes today attempt membership record records version administration site django
    assistant streaming stopped failed complete access correction deletion revocation
    sharing progress rejected
""".split())
# Identical in both languages, or names of things.
SAME_IN_BOTH = frozenset({"hash (SHA-256)", "e-mail", "status", "ID", "IP", "ANPD"})


def _labels_of(model) -> list[tuple[str, object]]:
    labels = [("verbose_name", model._meta.verbose_name),
              ("verbose_name_plural", model._meta.verbose_name_plural)]
    for field in model._meta.get_fields():
        if not hasattr(field, "verbose_name") or field.auto_created and not field.concrete:
            continue
        labels.append((field.name, field.verbose_name))
        for value, label in getattr(field, "flatchoices", None) or []:
            labels.append((f"{field.name}={value}", label))
    return labels


@pytest.mark.parametrize("model", sorted(admin.site._registry, key=lambda m: m._meta.label),
                         ids=lambda m: m._meta.label)
def test_every_model_field_and_choice_has_a_pt_br_name(model):
    untranslated = []
    ours = model._meta.app_label in ("chat", "compliance")
    for name, label in _labels_of(model):
        if not ours and isinstance(label, str):
            continue  # a third-party field named after its attribute, never shown
        with translation.override("en"):
            english = str(label)
        with translation.override("pt-br"):
            portuguese = str(label)
        if portuguese == english and english not in SAME_IN_BOTH and english != "ID":
            untranslated.append(f"{model._meta.label}.{name}: {english!r}")
    assert untranslated == []


class _VisibleText(HTMLParser):
    """Text of the elements that carry labels and values, minus data blocks (JSON, hashes)."""

    LABEL_TAGS = {"th", "label", "summary", "h1", "h2", "h3", "caption", "option", "button",
                  "td", "title", "legend", "a"}
    SKIP_CLASSES = re.compile(r"field-(metadata|hash|prev_hash|msg|object_repr|resource)|np-json|"
                              r"np-hash|np-message|user-tools|breadcrumbs|np-person")

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, bool]] = []
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "img", "input", "meta", "link", "hr"):
            return
        classes = " ".join(value or "" for key, value in attrs if key in ("class", "id"))
        skipped = bool(self.SKIP_CLASSES.search(classes)) or tag in ("script", "style", "pre")
        inherited = self.stack[-1][1] if self.stack else False
        self.stack.append((tag, skipped or inherited))

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data):
        text = data.strip()
        if not text or not self.stack:
            return
        if any(tag in self.LABEL_TAGS for tag, _ in self.stack) and not self.stack[-1][1]:
            self.texts.append(text)


def _english_words(html: str) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    found = []
    for text in parser.texts:
        text_without_asides = re.sub(r"\([^)]*\)", "", text)
        words = {w.lower() for w in re.findall(r"[^\W\d_]+", text_without_asides)}
        if words & ENGLISH:
            found.append(text)
    return sorted(set(found))


@pytest.fixture
def pt_client():
    return Client(headers={"accept-language": "pt-br"})


@pytest.fixture
def named_objects(make_user, make_session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        subject = make_user(username="maria.souza")
        subject.first_name, subject.last_name = "Maria", "Souza"
        subject.save()
        session = make_session(subject, exchanges=1)
        # A rated answer, so that the answer-feedback pages are walked too.
        session.messages.filter(role="assistant").update(
            feedback_rating="up", feedback_at=timezone.now())
        TermsVersion.objects.create(version="2026-12", published_at=timezone.now())
        DataSubjectRequest.objects.create(user=subject, request_type="access")
    subject.objects = {"session": session}
    return subject


# The back-office's own pages (named URL, args from the fixture's objects).
OWN_PAGES = [("admin:chat_chatsession_reveal", "session"),
             ("admin:compliance_auditevent_verify", None),
             ("admin:compliance_auditevent_export", None),
             ("admin:compliance_overview", None)]


def _admin_pages(objects: dict, user) -> list[str]:
    urls = ["/admin/"]
    for name, key in OWN_PAGES:
        urls.append(reverse(name, args=[objects[key].pk] if key else []))
    for model in admin.site._registry:
        info = (model._meta.app_label, model._meta.model_name)
        try:
            changelist = reverse("admin:{}_{}_changelist".format(*info))
        except NoReverseMatch:
            continue
        urls.append(changelist)
        urls.append(reverse("admin:{}_{}_add".format(*info)))
        # The first object the page lists (an admin may list a subset of its model).
        request = RequestFactory().get(changelist)
        request.user = user
        first = admin.site._registry[model].get_queryset(request).order_by("pk").first()
        if first is not None:
            urls.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    return urls


@pytest.mark.django_db
def test_every_admin_page_an_officer_opens_is_in_pt_br_with_no_inline_style(
        pt_client, officer, named_objects):
    pt_client.force_login(officer)
    opened, english = 0, {}
    for url in _admin_pages(named_objects.objects, officer):
        response = pt_client.get(url)
        if response.status_code == 403:
            continue  # pages the officer cannot open
        assert response.status_code == 200, url
        opened += 1
        html = response.content.decode()
        # The CSP allows no inline style, and message columns show text, not markup.
        assert not re.search(r"<[^>]+\sstyle=|<style", html), url
        assert "&lt;p&gt;" not in html and "&lt;br" not in html, url
        found = _english_words(html)
        if found:
            english[url] = found
    assert opened >= 20
    assert english == {}, "\n".join(f"{url}: {texts}" for url, texts in english.items())


@pytest.mark.django_db
def test_the_header_and_object_names_read_as_a_person_writes_them(pt_client, officer,
                                                                  named_objects):
    pt_client.force_login(officer)
    page = pt_client.get("/admin/").content.decode()
    assert "NeonPro — Conformidade LGPD" in page
    assert "Administração do Django" not in page
    request = DataSubjectRequest.objects.get(user=named_objects)
    with translation.override("pt-br"):
        received = timezone.localtime(request.received_at).strftime("%d/%m/%Y")
        due = timezone.localtime(request.due_at).strftime("%d/%m/%Y")
        assert str(request) == (f"Solicitação de acesso de Maria S. — recebida em {received}, "
                                f"prazo {due}")
        membership = named_objects.clinic_membership
        assert str(membership) == (f"Maria S. — profissional da clínica, "
                                   f"{membership.clinic.name}")


def test_the_english_word_list_catches_an_untranslated_label():
    html = ('<table><thead><tr><th><div class="text"><span>Created at</span></div></th>'
            '</tr></thead><tbody><tr><td class="field-outcome">success</td>'
            '<td class="field-metadata_summary">{"messages": 2}</td></tr></tbody></table>')
    assert _english_words(html) == ["Created at", "success"]
    assert _english_words("<th>Criado em</th><td>sucesso</td>") == []



@pytest.mark.django_db
def test_the_verification_result_is_in_pt_br(pt_client, officer, named_objects):
    pt_client.force_login(officer)
    page = pt_client.post(reverse("admin:compliance_auditevent_verify")).content.decode()
    assert "Íntegra" in page and "eventos verificados" in page
    assert _english_words(page) == []
