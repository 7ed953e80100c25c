"""The admin speaks English and Russian: every string of ours is translated, the switch works.

The Russian catalogue is `locale/ru/LC_MESSAGES/django.po`, compiled to the committed
`django.mo` (the service reads the .mo and needs no gettext to run). Both are refreshed by
`scripts/update_translations.sh`; these tests fail when a string of ours has no translation
yet, or when the .mo was not compiled again after the .po changed.
"""

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.commands import makemessages
from django.urls import reverse
from django.utils import translation
from django.utils.translation import ngettext

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "locale"
PO_FILE = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.po"
MO_FILE = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.mo"
SCRIPT = ROOT / "scripts" / "update_translations.sh"
# What makemessages skips: the same list as scripts/update_translations.sh (a test below checks).
IGNORED = [".venv", "var", "bench", "tests", "node_modules", "test-artifacts", "templates/emails"]


# A .po file, read well enough for these checks (GNU gettext's own output: no exotic syntax).


@dataclass
class PoEntry:
    msgid: str
    msgctxt: str | None = None
    msgid_plural: str | None = None
    # One string, or one per plural form (msgstr[0], msgstr[1], ...).
    msgstr: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        """Return the msgid as gettext looks it up: with its context, if any, before EOT."""
        return self.msgid if self.msgctxt is None else f"{self.msgctxt}\x04{self.msgid}"

    @property
    def translated(self) -> bool:
        return "fuzzy" not in self.flags and bool(self.msgstr) and all(self.msgstr)


KEYWORD = re.compile(r"^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(\".*\")$")


def po_entries(text: str) -> list[PoEntry]:
    """Return the live entries of a .po file (obsolete `#~` ones are skipped), header first."""
    entries: list[PoEntry] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if not lines or any(line.startswith("#~") for line in lines):
            continue
        values: dict[str, list[str]] = {}
        flags: set[str] = set()
        current: str | None = None
        for line in lines:
            if line.startswith("#,"):
                flags |= {flag.strip() for flag in line[2:].split(",")}
            elif line.startswith("#"):
                continue
            elif line.startswith('"') and current is not None:
                values[current].append(ast.literal_eval(line))
            elif match := KEYWORD.match(line):
                current = match.group(1)
                values[current] = [ast.literal_eval(match.group(3))]
            else:
                raise ValueError(f"unreadable .po line: {line!r}")
        text_of = {name: "".join(parts) for name, parts in values.items()}
        plural_forms = sorted(
            (int(name[7:-1]), value) for name, value in text_of.items() if name.startswith("msgstr[")
        )
        entries.append(
            PoEntry(
                msgid=text_of["msgid"],
                msgctxt=text_of.get("msgctxt"),
                msgid_plural=text_of.get("msgid_plural"),
                msgstr=[value for _, value in plural_forms] if plural_forms else [text_of["msgstr"]],
                flags=flags,
            )
        )
    return entries


def describe(entry: PoEntry) -> str:
    where = f" [context {entry.msgctxt!r}]" if entry.msgctxt else ""
    state = " (fuzzy)" if "fuzzy" in entry.flags else ""
    return f"{entry.msgid!r}{where}{state}"


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
