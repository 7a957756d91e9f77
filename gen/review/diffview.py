"""The output shapes of `gen diff`: text for a terminal, markdown for a pull request, json for tools."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from gen.components.argocd import overlay_dir
from gen.errors import printable
from gen.review.diffing import MISSING, STATUSES, FieldChange, ObjectChange, scalar_text

if TYPE_CHECKING:
    from gen.commands.diff import Report, Section

SIGN = {"added": "+", "removed": "-", "changed": "~"}
ARROW = "→"


def value_text(value: Any) -> str:
    """A value on one line where it fits: JSON scalars (strings quoted), short structures inline."""
    if value is MISSING:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _block(value: Any) -> list[str]:
    """A value too long for one line: a structure as YAML lines, a scalar as itself."""
    return scalar_text(value).splitlines() if isinstance(value, dict | list) else [value_text(value)]


def _label(section: Section) -> str:
    """The cluster's name, or `group 1: 200 clusters`."""
    return f"{section.name}: {len(section.clusters)} clusters" if section.clusters else section.name


# A group lists this many of its clusters by name in text and markdown; json lists them all.
CLUSTERS_LISTED = 10


def _clusters(section: Section, code: Callable[[str], str]) -> str:
    """A group's clusters (the first few when many) and whose values it shows."""
    more = len(section.clusters) - CLUSTERS_LISTED
    names = ", ".join(code(n) for n in section.clusters[:CLUSTERS_LISTED]) + (f" and {more} more" if more > 0 else "")
    return f"{names}; shown as in {code(section.clusters[0])} (each with its own name, address and namespace)"


def _tally(section: Section) -> str:
    """`status: 1 added, 2 changed`, the counts that are not zero."""
    counts = section.comparison.counts()
    return f"{section.status}: " + ", ".join(f"{counts[c]} {c}" for c in STATUSES if counts[c])


def _field_lines(f: FieldChange, width: int = 80) -> tuple[str, list[str]]:
    """The field's one-line summary and the lines under it (a line diff or a YAML block)."""
    if f.multiline:
        return "", f.line_diff()
    old, new = value_text(f.old), value_text(f.new)
    if len(old) + len(new) <= width:
        return f"{old} {ARROW} {new}", []
    sides = (("-", f.old), ("+", f.new))
    return "", [f"{sign} {line}" for sign, value in sides if value is not MISSING for line in _block(value)]


# ------------------------------------------------------------------ text


_CODES = dict(bold="1", red="31", green="32", yellow="33", magenta="35", cyan="36")
_DIFF_STYLES = {"+": "green", "-": "red", "@": "cyan"}
_Paint = Callable[[str | None, str], str]  # (style or None for none, text) to the text as shown


def _painter(on: bool) -> _Paint:
    return lambda style, text: f"\x1b[{_CODES[style]}m{text}\x1b[0m" if on and style and text else text


def text(report: Report, *, color: bool = False) -> str:
    """The report for a terminal; ANSI colours only when color is set."""
    paint = _painter(color)
    lines = [paint("bold", f"gen diff: {report.label} ({report.commit[:12]}) {ARROW} working tree")]
    if not report.sections:
        return "\n".join([*lines, f"no change to the built manifests between {report.label} and the working tree", ""])
    lines += ["", *_summary_table(report), ""]
    for section in report.sections:
        lines.append(paint("bold", f"=== {_label(section)} ({_tally(section)}) ==="))
        if section.clusters:
            lines.append(f"  {_clusters(section, str)}")
        if section.source:
            lines.append(f"  from {section.source}")
        lines += [paint("magenta", f"  ! {note}") for note in section.impact]
        for change in section.comparison.changes:
            lines += _text_object(change, paint, details=section.status == "changed")
        lines.append("")
    return "\n".join(lines) + "\n"


def _summary_table(report: Report) -> list[str]:
    width = max(len("cluster"), *(len(_label(s)) for s in report.sections))
    table: list[tuple[str, str, tuple[object, ...]]] = [("cluster", "status", STATUSES)]
    table += [(_label(s), s.status, tuple(s.comparison.counts()[c] for c in STATUSES)) for s in report.sections]
    # A group's row counts one cluster's changes; the total counts every cluster's.
    totals = [sum(s.comparison.counts()[c] * max(1, len(s.clusters)) for s in report.sections) for c in STATUSES]
    table.append(("total", "", tuple(totals)))
    return [f"{name:<{width}}  {status:<8} " + " ".join(f"{n:>7}" for n in row) for name, status, row in table]


def _text_object(change: ObjectChange, paint: _Paint, *, details: bool) -> list[str]:
    style = {"added": "green", "removed": "red", "changed": "yellow"}[change.status]
    renamed = f"  ({change.old_name} {ARROW} {change.new_name})" if change.renamed else ""
    head = paint(style, f"{SIGN[change.status]} {change.key.label()}{renamed}")
    if change.source:
        head += paint("cyan", f"  <- {change.source}")
    lines = [head]
    lines += [paint("magenta", f"    ! {note}") for note in change.impact]
    if change.status == "added" and details and change.new is not None:
        lines += [f"      {line}" for line in _block(change.new)]
    for f in change.fields:
        summary, below = _field_lines(f)
        line = f"    {f.path_text()}:" + (f" {summary}" if summary else "")
        if f.source:
            line += paint("cyan", f"  <- {f.source}")
        lines.append(line)
        lines += [f"      {paint(_DIFF_STYLES.get(x[:1]), x)}" for x in below]
    return lines


# ------------------------------------------------------------------ markdown


def _code(value: str, *, cell: bool = False) -> str:
    """An inline code span, where markdown and HTML are inert, that no value can leave."""
    text = printable(value)  # on one line: a raw line break would end the table row or list item
    if cell:  # `|` would still end a table cell: escaped (GitHub drops the backslash)
        text = text.replace("|", "\\|")
    fence = _fence(text, 1)
    # A space on each side keeps a backtick at either end from joining the fence; both are stripped.
    pad = " " if text.startswith(("`", " ")) or text.endswith(("`", " ")) or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_text(value: str) -> str:
    """Plain text in markdown, shown as it is: HTML escaped, markdown punctuation backslash-escaped."""
    return _MD_SPECIAL.sub(r"\\\g<0>", html.escape(printable(value), quote=False))


# Every ASCII punctuation character that starts or ends markdown syntax (links, images,
# emphasis, code, tables, headings, autolinks); escaping the others does no harm.
_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]()#+\-.!|~<>:]")


def _fenced(lines: Sequence[str], lang: str) -> list[str]:
    """A fenced code block that no line can close."""
    fence = _fence("\n".join(lines), 3)
    return [f"{fence}{lang}", *lines, fence]


def _fence(text: str, shortest: int) -> str:
    """Backticks longer than any run of them in text, so that nothing inside ends the code."""
    return "`" * max(shortest, max((len(r) for r in re.findall(r"`+", text)), default=0) + 1)


def _md_object(change: ObjectChange, *, details: bool) -> list[str]:
    head = f"**{SIGN[change.status]} {_md_text(change.key.kind)}** {_code(change.key.label().split(' ', 1)[1])}"
    if change.renamed:
        head += f" ({_code(change.old_name or '')} {ARROW} {_code(change.new_name or '')})"
    if change.source:
        head += f" — from {_code(change.source)}"
    out = [head, ""]
    out += [f"- ⚠️ {_md_text(note)}" for note in change.impact]
    if change.impact:
        out.append("")
    if change.status == "added" and details and change.new is not None:
        out += [*_fenced(_block(change.new), "yaml"), ""]
    for f in change.fields:
        summary, below = _field_lines(f)
        item = f"- {_code(f.path_text())}"
        if summary:
            item += f": {_code(value_text(f.old))} {ARROW} {_code(value_text(f.new))}"
        if f.source:
            item += f" — from {_code(f.source)}"
        out.append(item)
        if below:
            out += ["", *(f"  {x}" for x in _fenced(below, "diff")), ""]
    if out[-1] != "":
        out.append("")
    return out


def markdown(report: Report, *, max_chars: int = 60_000) -> str:
    """A pull-request comment: summary table, impact, one collapsible section per cluster or group.

    At most max_chars, everything counted (GitHub refuses comments over 65,536 characters): see `_Page`.
    """
    page = _Page(max_chars, f"gen diff --base {report.ref}")
    page.put(f"### gen diff: {_code(report.label)} ({report.commit[:12]}) {ARROW} working tree\n\n")
    stale = [
        f"- ⚠️ {_code(overlay_dir(name))} is stale against {_code(spec)}: this diff shows the committed overlay "
        f"(run: {_code(f'gen render {name}')})\n"
        for name, spec in report.stale.items()
    ]
    page.put_all(stale, "stale note")
    # A new spec not rendered yet changes nothing here: said where the reviewer reads, or it goes unseen.
    unrendered = [
        f"- ⚠️ {_code(spec)} has no rendered overlay, so it is not in this diff (run: {_code(f'gen render {name}')})\n"
        for name, spec in report.unrendered.items()
    ]
    page.put_all(unrendered, "unrendered note")
    if not report.sections:
        page.put(f"No change to the built manifests between {_code(report.label)} and this branch.\n")
    rows = [
        f"| {_code(_label(s), cell=True)} | {s.status} | {' | '.join(map(str, s.comparison.counts().values()))} |\n"
        for s in report.sections
    ]
    page.put_all(rows, "summary row", "| cluster | status | added | changed | removed |\n|---|---|--:|--:|--:|\n")
    impacts = [f"- {_code(_label(s))}: {_md_text(note)}\n" for s in report.sections for note in s.impact]
    page.put_all(impacts, "impact note", "**Impact**\n\n")
    closing = "</details>\n\n"
    for s in report.sections:
        # Inside <summary> only HTML counts: the name is escaped as HTML, on one line.
        opening = ["<details>", f"<summary><b>{html.escape(printable(_label(s)))}</b> ({_tally(s)})</summary>", ""]
        if s.clusters:
            opening += [_clusters(s, _code) + ".", ""]
        if s.source:
            opening += [f"From {_code(s.source)}.", ""]
        blocks = [
            "\n".join(_md_object(change, details=s.status == "changed")) + "\n" for change in s.comparison.changes
        ]
        blocks[0] = "\n".join(opening) + "\n" + blocks[0]  # no section opens without a change to show
        shown = [page.put(b, "object change", reserve=len(closing), section=_label(s)) for b in blocks]
        if shown[0]:
            page.put(closing, always=True)
    return page.text()


# What a cut comment says it left out, in this order; the sections cut are named within this many characters.
_LEFT_OUT = ("object change", "stale note", "unrendered note", "summary row", "impact note")
_NAMES_ROOM = 500


class _Page:
    """Markdown up to limit: from the first part that does not fit on, every part is left out, counted in a notice."""

    def __init__(self, limit: int, cmd: str) -> None:
        self.limit = limit
        self.cmd = cmd  # the command that shows everything
        # What the notice may need: every count in the billions, and the names of the sections cut.
        self.budget = limit - len(self.notice(dict.fromkeys(_LEFT_OUT, 10**9), [])) - _NAMES_ROOM - 40
        self.parts: list[str] = []
        self.size = 0
        self.left: dict[str, int] = dict.fromkeys(_LEFT_OUT, 0)
        self.cut: dict[str, None] = {}  # the sections with object changes left out, in order
        self.full = False

    def put(
        self, text: str, kind: str | None = None, *, reserve: int = 0, section: str | None = None, always: bool = False
    ) -> bool:
        """Add text if it fits with `reserve` characters to spare (`always`: reserved before); else count it."""
        self.full = self.full or (not always and self.size + len(text) + reserve > self.budget)
        if self.full and not always:
            if kind is not None:
                self.left[kind] += 1
            if section is not None:
                self.cut[section] = None
            return False
        self.parts.append(text)
        self.size += len(text)
        return True

    def put_all(self, parts: list[str], kind: str, head: str = "") -> None:
        if parts:  # head, the parts, a blank line
            self.put(head)
            for text in parts:
                self.put(text, kind)
            self.put("\n")

    def text(self) -> str:
        if self.full:
            self.parts.append(self.notice(self.left, list(self.cut)))
        return "".join(self.parts)

    def notice(self, left: dict[str, int], sections: list[str]) -> str:
        names = ""
        for i, name in enumerate(sections):
            if len(names) + len(_code(name)) + 2 > _NAMES_ROOM:
                names += f" and {len(sections) - i} more"
                break
            names += (", " if names else "") + _code(name)
        others = ", ".join(f"{n} {kind}(s)" for kind, n in left.items() if n and kind != "object change")
        return (
            f"\n> [!WARNING]\n> Truncated at {self.limit:,} characters (GitHub comments hold at most 65,536): "
            + f"{left['object change']} object change(s) are not shown"
            + (f" (of {names})" if names else "")
            + (f"; nor are {others}" if others else "")
            + f". The full diff: {_code(self.cmd)}\n"
        )


# ------------------------------------------------------------------ json


def _json_object(change: ObjectChange) -> dict[str, Any]:
    out: dict[str, Any] = {
        "apiVersion": change.key.api_version,
        "kind": change.key.kind,
        "namespace": change.key.namespace or None,
        "name": change.key.name,
        "oldName": change.old_name,
        "newName": change.new_name,
        "status": change.status,
        "source": change.source,
        "impact": change.impact,
        "fields": [
            {
                "path": f.path_text(),
                "op": f.op,
                "old": None if f.old is MISSING else f.old,
                "new": None if f.new is MISSING else f.new,
                "diff": f.line_diff() if f.multiline else None,
                "source": f.source,
            }
            for f in change.fields
        ],
    }
    if change.status == "added":
        out["object"] = change.new
    return out


def _about(section: Section) -> dict[str, str]:
    return {"name": section.name, "scope": section.scope, "status": section.status}


def _json_section(section: Section) -> dict[str, Any]:
    return {
        **_about(section),
        **({"clusters": section.clusters} if section.clusters else {}),
        "source": section.source,
        "counts": section.comparison.counts(),
        "impact": section.impact,
        "objects": [_json_object(c) for c in section.comparison.changes],
    }


def json_text(report: Report) -> str:
    """The whole report as one JSON document (stable key order): groups, then the sections outside any group."""
    summary = [
        {**_about(s), "name": name, "scope": "cluster", "group": s.name, **s.comparison.counts()}
        for s in report.sections
        for name in s.clusters
    ]
    summary += [{**_about(s), "group": None, **s.comparison.counts()} for s in report.sections if not s.clusters]
    doc = {
        "base": {"ref": report.ref, "commit": report.commit},
        "head": "working tree",
        "stale": [{"name": name, "spec": spec} for name, spec in report.stale.items()],
        "unrendered": [{"name": name, "spec": spec} for name, spec in report.unrendered.items()],
        "summary": sorted(summary, key=lambda row: (row["scope"] == "fleet", row["name"])),
        "groups": [_json_section(s) for s in report.sections if s.clusters],
        "sections": [_json_section(s) for s in report.sections if not s.clusters],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
