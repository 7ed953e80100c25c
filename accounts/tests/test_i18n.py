"""The admin speaks English and Russian: every string of ours is translated, the switch works.

The Russian catalogue is `locale/ru/LC_MESSAGES/django.po`, compiled to the committed
`django.mo` (the service reads the .mo and needs no gettext to run). Both are refreshed by
`scripts/update_translations.sh`; these tests fail when a string of ours has no translation
yet, or when the .mo was not compiled again after the .po changed.
"""

import gettext
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from auditlog.models import LogEntry
from django.core.management import call_command
from django.core.management.commands import makemessages
from django.urls import reverse
from django.utils import dateformat, timezone, translation
from django.utils.translation import ngettext

from accounts.tests.catalogue import (
    MO_FILE,
    PO_FILE,
    ROOT,
    describe,
    english_left,
    english_patterns,
    po_entries,
    visible_texts,
)
from accounts.tests.russian_pages import PRICE_IN_RUSSIAN, back_office_with_history
from core.audit import AuditAction

SCRIPT = ROOT / "scripts" / "update_translations.sh"
# What makemessages skips: the same list as scripts/update_translations.sh (a test below checks).
IGNORED = [".venv", "var", "bench", "tests", "node_modules", "test-artifacts", "templates/emails"]


class ExtractInto(makemessages.Command):
    """makemessages over the project as usual, writing its catalogue under another directory."""

    def __init__(self, target: Path, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.target = str(target)

    def find_files(self, root: str) -> list[makemessages.TranslatableFile]:
        files = super().find_files(root)
        # Every file's messages go to the target directory, and only its .pot is read back.
        self.locale_paths = [self.target]
        for translatable in files:
            translatable.locale_dir = self.target
        return files


def test_the_parser_reads_gettext_syntax():
    entries = po_entries(
        'msgid ""\nmsgstr "Language: ru\\n"\n\n'
        '#: a.py\n#, fuzzy, python-format\nmsgid "a \\"%(x)s\\" "\n"b"\nmsgstr ""\n"в"\n\n'
        'msgctxt "c"\nmsgid "one"\nmsgid_plural "many"\nmsgstr[0] "1"\nmsgstr[1] "2"\nmsgstr[2] ""\n\n'
        '#~ msgid "gone"\n#~ msgstr "нет"\n'
    )
    assert [(e.key, e.msgstr, e.translated) for e in entries] == [
        ("", ["Language: ru\n"], True),
        ('a "%(x)s" b', ["в"], False),
        ("c\x04one", ["1", "2", ""], False),
    ]
    assert entries[1].flags == {"fuzzy", "python-format"}


def test_every_string_of_ours_has_a_russian_translation(tmp_path, monkeypatch):
    """Extract our strings afresh (as makemessages does) and find each translated in the .po."""
    missing_tools = [
        tool for tool in ("xgettext", "msguniq", "msgmerge", "msgattrib") if not shutil.which(tool)
    ]
    if missing_tools:
        pytest.fail(
            f"GNU gettext is needed to check the catalogue (apt-get install gettext): {missing_tools}"
        )
    # The committed catalogue, merged with what the code holds now, in a scratch copy.
    scratch = tmp_path / "locale"
    (scratch / "ru" / "LC_MESSAGES").mkdir(parents=True)
    shutil.copy(PO_FILE, scratch / "ru" / "LC_MESSAGES" / "django.po")
    monkeypatch.chdir(ROOT)
    call_command(
        ExtractInto(scratch), locale=["ru"], ignore_patterns=list(IGNORED), no_obsolete=True, verbosity=0
    )

    merged = po_entries((scratch / "ru" / "LC_MESSAGES" / "django.po").read_text(encoding="utf-8"))
    untranslated = [describe(entry) for entry in merged[1:] if not entry.translated]
    assert not untranslated, (
        f"{len(untranslated)} string(s) of ours have no Russian translation: run "
        "scripts/update_translations.sh, translate them in locale/ru/LC_MESSAGES/django.po, "
        "run it again and commit the .po and .mo.\n  " + "\n  ".join(untranslated)
    )
    # The committed .po already holds every string, so a run of the script changes nothing.
    committed = {entry.key for entry in po_entries(PO_FILE.read_text(encoding="utf-8"))}
    new = sorted({entry.key for entry in merged} - committed)
    assert not new, f"Strings missing from the committed .po (run the script): {new}"


def test_the_committed_mo_is_compiled_from_the_committed_po() -> None:
    entries = po_entries(PO_FILE.read_text(encoding="utf-8"))
    expected: dict[Any, str] = {}
    for entry in entries[1:]:
        if not entry.translated:
            continue
        if entry.msgid_plural is None:
            expected[entry.key] = entry.msgstr[0]
        else:
            expected.update({(entry.key, n): text for n, text in enumerate(entry.msgstr)})
    with MO_FILE.open("rb") as mo:
        catalog = dict(gettext.GNUTranslations(mo)._catalog)  # type: ignore[attr-defined]
    catalog.pop("", None)
    assert catalog == expected, "locale/ru/LC_MESSAGES/django.mo is stale: run scripts/update_translations.sh"


def test_the_catalogue_is_russian_with_three_plural_forms():
    header = po_entries(PO_FILE.read_text(encoding="utf-8"))[0]
    assert "Language: ru\n" in header.msgstr[0]
    assert "Plural-Forms: nplurals=3;" in header.msgstr[0]
    assert "fuzzy" not in header.flags


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (1, "Активирован 1 тариф."),
        (2, "Активировано 2 тарифа."),
        (5, "Активировано 5 тарифов."),
        (11, "Активировано 11 тарифов."),
        (21, "Активирован 21 тариф."),
        (104, "Активировано 104 тарифа."),
    ],
)
def test_russian_counts_take_the_right_plural_form(count, expected):
    with translation.override("ru"):
        message = ngettext("%(count)d tariff was activated.", "%(count)d tariffs were activated.", count)
    assert message % {"count": count} == expected


def test_the_script_skips_what_the_test_skips():
    script = SCRIPT.read_text()
    assert re.findall(r"--ignore '([^']+)'", script.split("compilemessages")[0]) == IGNORED


@pytest.mark.django_db
def test_staff_switch_the_admin_to_russian_and_back(admin_client):
    changelist = reverse("admin:payments_payment_changelist")
    english = admin_client.get(changelist)
    assert english.status_code == 200
    page = english.content.decode()
    assert "Select payment to view" in page
    assert "partially refunded" in page  # a status filter choice of ours
    assert '<button type="submit" name="language" value="ru" lang="ru">Русский</button>' in page

    switched = admin_client.post(reverse("set_language"), {"language": "ru", "next": changelist})
    assert switched.status_code == 302
    assert switched["Location"] == changelist

    russian = admin_client.get(changelist).content.decode()
    assert '<html lang="ru"' in russian
    assert "Выберите платёж для просмотра" in russian  # Django's title with our model name
    assert "Платежи" in russian  # our app's name in the breadcrumbs
    assert "частично возвращено" in russian  # our status choice
    assert "Select payment to view" not in russian
    assert '<button type="submit" name="language" value="en" lang="en">English</button>' in russian

    admin_client.post(reverse("set_language"), {"language": "en", "next": changelist})
    back = admin_client.get(changelist).content.decode()
    assert "Select payment to view" in back
    assert '<html lang="en"' in back


@pytest.mark.django_db
def test_our_admin_pages_speak_russian(admin_client):
    admin_client.post(reverse("set_language"), {"language": "ru", "next": "/admin/"})
    index = admin_client.get(reverse("admin:index")).content.decode()
    for name in ("Тарифы", "Промокоды", "Подписки", "Платёжные аккаунты", "Возвраты", "Уведомления"):
        assert name in index, name
    tariff_form = admin_client.get(reverse("admin:tariffs_tariff_add")).content.decode()
    assert "основных единицах валюты" in tariff_form  # our help text
    assert "Витрина" in tariff_form  # our fieldset


# --- What a Russian reader sees: no English string of ours left on a back-office page ---------


@pytest.fixture
def russian_staff(client, django_user_model):
    """Return the test client signed in as a superuser who chose Russian."""
    # Not "admin": that is also a string of ours, and would read as one on the page.
    staff = django_user_model.objects.create_superuser(username="olga", email="olga@example.com")
    client.force_login(staff)
    client.post(reverse("set_language"), {"language": "ru", "next": "/admin/"})
    return staff


@pytest.fixture(scope="module")
def english_of_ours() -> dict[str, re.Pattern[str]]:
    return english_patterns(po_entries(PO_FILE.read_text(encoding="utf-8")))


def test_the_check_finds_our_english_on_an_english_page(client, admin_user, english_of_ours):
    client.force_login(admin_user)
    page = client.get(reverse("admin:auditlog_logentry_changelist")).content.decode()
    left = english_left(page, english_of_ours)
    assert any(found.startswith("'staff action'") for found in left), left


@pytest.mark.django_db
def test_the_audit_log_extension_and_outbox_speak_only_russian(client, russian_staff, english_of_ours):
    back_office = back_office_with_history(staff=russian_staff)
    left = {}
    for name, url in back_office.pages.items():
        response = client.get(url)
        assert response.status_code == 200, name
        page = response.content.decode()
        assert '<html lang="ru"' in page, name
        left[name] = english_left(page, english_of_ours)
        # auditlog's own summary ("2 changes: amount, status") is replaced by ours.
        left[name] += [text for text in visible_texts(page) if re.match(r"\d+ changes?: ", text)]
    # The extension's confirmation step too.
    subscription = back_office.subscription
    confirm = client.post(
        back_office.pages["extension form"],
        {"days": "5", "reason": "Долго грузилось", "period_end": subscription.current_period_end.isoformat()},
    )
    assert 'name="confirm" value="yes"' in confirm.content.decode()  # the summary to confirm
    left["extension confirmation"] = english_left(confirm.content.decode(), english_of_ours)

    assert {name: found for name, found in left.items() if found} == {}


@pytest.mark.django_db
def test_russian_pages_write_days_and_money_the_russian_way(client, russian_staff):
    back_office = back_office_with_history(staff=russian_staff)
    today = timezone.localdate()
    by_day = visible_texts(client.get(back_office.pages["audit log, this month by day"]).content.decode())
    with translation.override("ru"):
        genitive, nominative = dateformat.format(today, "j E"), dateformat.format(today, "j F")
    assert genitive in by_day  # "6 декабря"
    assert nominative not in by_day  # not "6 Декабрь"

    subscription_page = client.get(back_office.pages["subscription"]).content.decode()
    assert PRICE_IN_RUSSIAN in subscription_page
    assert "3,990.00 RUB" not in subscription_page
    entry = LogEntry.objects.get(additional_data__action=AuditAction.REFUND_CREATE.value)
    details = visible_texts(
        client.get(reverse("admin:auditlog_logentry_change", args=[entry.pk])).content.decode()
    )
    assert "повторный платёж: списали дважды" in details  # the reason code, in Russian
