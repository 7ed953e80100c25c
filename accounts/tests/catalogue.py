"""The Russian catalogue as tests read it, and what an admin page still shows in English.

`po_entries` reads the committed `locale/ru/LC_MESSAGES/django.po`; `english_left` lists the
strings of ours (the catalogue's msgids) a rendered page shows untranslated. The completeness
test (`test_i18n.py`) and the browser test (`tests/e2e/test_russian_admin.py`) share them.
"""

import ast
import re
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = ROOT / "locale"
PO_FILE = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.po"
MO_FILE = LOCALE_DIR / "ru" / "LC_MESSAGES" / "django.mo"

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


# What a reader sees of a page: its text, and the attributes browsers show as text.


class VisibleText(HTMLParser):
    """Collect a page's text nodes and shown attributes, one whitespace-collapsed string each."""

    SHOWN_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
    HIDDEN_ELEMENTS = ("script", "style", "template")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN_ELEMENTS:
            self._hidden += 1
        values = dict(attrs)
        shown = [values.get(name) for name in self.SHOWN_ATTRIBUTES]
        if tag == "input" and values.get("type") in ("submit", "button", "reset"):
            shown.append(values.get("value"))
        self.texts.extend(" ".join(value.split()) for value in shown if value and value.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN_ELEMENTS and self._hidden:
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_texts(html: str) -> list[str]:
    """Return the text nodes and shown attributes of an HTML page."""
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser.texts


# printf-style (%(name)s, %s) and brace (`{repr:s}`) placeholders, which a page fills in.
PLACEHOLDER = re.compile(r"%(?:\([^)]+\))?[-#0 +]?\d*(?:\.\d+)?[sdif]|\{[^{}]*\}")


def _words_pattern(text: str) -> str:
    """Return a pattern of the words between two values, keeping the spaces that part them.

    "%(amount)s on %(date)s" must not be found in "Crontab": "on" stands between spaces there.
    """
    words = r"\s+".join(re.escape(word) for word in text.split())
    if not words:
        return ""
    before = r"\s+" if text[:1].isspace() else ""
    after = r"\s+" if text[-1:].isspace() else ""
    return before + words + after


def _shown_pattern(msgid: str) -> re.Pattern[str] | None:
    """Return how a msgid would read on a page, or None when it is too short to tell apart.

    One word (with or without values beside it) must be a whole text (a label, a column, a
    choice, maybe with a colon after it), since it may well be a part of data; several words
    may be anywhere inside a text.
    """
    if "<" in msgid:  # HTML inside: spread over several text nodes, not checked here
        return None
    literal = " ".join(PLACEHOLDER.sub(" ", msgid).split())
    if len(re.findall(r"[A-Za-z]{2,}", literal)) == 0:
        return None
    parts = [_words_pattern(part) for part in PLACEHOLDER.split(" ".join(msgid.split()))]
    body = ".+?".join(parts)
    if " " not in literal:  # one word, with or without a value beside it ("%(provider)s id")
        return re.compile(rf"^{body}:?$", re.IGNORECASE)
    return re.compile(body, re.IGNORECASE)


def english_patterns(entries: list[PoEntry]) -> dict[str, re.Pattern[str]]:
    """Return, for each English string of ours, how it would show on a page left untranslated."""
    patterns: dict[str, re.Pattern[str]] = {}
    for entry in entries:
        if entry.msgid == "" or (entry.translated and entry.msgstr == [entry.msgid]):
            continue  # the header, and words Russian writes the same way ("HTML", "URL")
        for msgid in filter(None, (entry.msgid, entry.msgid_plural)):
            if (pattern := _shown_pattern(msgid)) is not None:
                patterns[msgid] = pattern
    return patterns


def english_left(html: str, patterns: dict[str, re.Pattern[str]]) -> list[str]:
    """Return the English strings of ours a rendered page shows, each with the text it is in."""
    found: list[str] = []
    for text in visible_texts(html):
        found.extend(f"{msgid!r} in {text!r}" for msgid, pattern in patterns.items() if pattern.search(text))
    return found
