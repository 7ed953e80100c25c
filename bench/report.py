"""Write a benchmark's latest figures into docs/benchmarks.md, leaving other sections alone."""

import textwrap
from pathlib import Path

HEADER = (
    "# Benchmarks\n\n"
    "Figures measured by the scripts under `bench/` against the service really running; each "
    "section says how to rerun its benchmark.\n"
)


def docs_write_section(*, path: Path, key: str, heading: str, generated: str) -> None:
    """Replace the generated block of one section, creating the file or the section if needed.

    Only the text between the section's `<!-- key:begin -->` and `<!-- key:end -->` markers
    is rewritten: notes written by hand below the block, and other sections, are kept.
    """
    begin, end = f"<!-- {key}:begin -->", f"<!-- {key}:end -->"
    block = f"{begin}\n{generated.strip()}\n{end}"
    text = path.read_text() if path.exists() else ""
    if not text.strip():
        text = HEADER
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        _, after = rest.split(end, 1)
        text = f"{before}{block}{after}"
    elif heading in text:
        before, after = text.split(heading, 1)
        text = f"{before}{heading}\n\n{block}\n{after}"
    else:
        text = f"{text.rstrip()}\n\n{heading}\n\n{block}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def markdown_paragraph(text: str, width: int = 100) -> str:
    """Return a paragraph wrapped at `width`; tables, code and lists are returned as they are."""
    if text.startswith(("|", "```", "- ", "* ", "1. ")) or "\n" in text:
        return text
    return textwrap.fill(text, width=width, break_long_words=False, break_on_hyphens=False)


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    """Return a GitHub-flavoured Markdown table: the first column left-aligned, the others right."""
    align = ["---"] + ["---:"] * (len(header) - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
