#!/usr/bin/env python3
"""Fails on Markdown that renders broken on GitHub (GFM), which linters let by:

- pipe rows with no header separator (`|---|`) under their first row: GitHub shows
  them as raw text with pipes. This is what a blank line inside a table does to
  the rows after it;
- a table whose separator or rows have a different number of cells than its header;
- a line of text glued under a table (no blank line): it becomes a table row;
- a code fence (``` or ~~~) that is never closed: the rest of the file is code.

Usage: check_markdown.py [FILE…]. Without files: every *.md git tracks, outside
target/ and node_modules/ (outside a git checkout, every *.md there and not in a
hidden directory). `--self-test` runs the checker on known-broken samples.
Standard library only. Exit status 1 when anything is found.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = ("target/", "node_modules/")

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")
PIPE_ROW = re.compile(r"^ {0,3}\|")
SEPARATOR_CELL = re.compile(r"^\s*:?-+:?\s*$")


def cells(line: str) -> list[str]:
    """A row's cells, split on unescaped pipes as GFM does (a pipe inside a code
    span splits the cell too, unless escaped as `\\|`)."""
    text = line.strip()
    parts, cell, i = [], "", 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text):
            cell += text[i : i + 2]
            i += 2
            continue
        if text[i] == "|":
            parts.append(cell)
            cell = ""
        else:
            cell += text[i]
        i += 1
    parts.append(cell)
    if text.startswith("|"):
        parts = parts[1:]
    if text.endswith("|") and not text.endswith("\\|") and parts:
        parts = parts[:-1]
    return parts


def is_separator(line: str) -> bool:
    row = cells(line)
    return bool(row) and "-" in line and all(SEPARATOR_CELL.match(c) for c in row)


def check(text: str) -> list[tuple[int, str]]:
    """(line number, problem) for every problem in one file's text."""
    problems: list[tuple[int, str]] = []
    lines = text.split("\n")
    fence: tuple[str, int] | None = None  # (opening marker, line number)
    block: list[tuple[int, str]] = []  # consecutive non-blank lines outside code

    def end_block() -> None:
        problems.extend(check_block(block))
        block.clear()

    for number, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is not None:
            marker = fence[0]
            if m and m.group(1)[0] == marker[0] and len(m.group(1)) >= len(marker) and not m.group(2).strip():
                fence = None
            continue
        if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
            end_block()
            fence = (m.group(1), number)
            continue
        if line.strip():
            block.append((number, line))
        else:
            end_block()
    end_block()
    if fence is not None:
        problems.append((fence[1], f"code fence {fence[0]} is never closed: the rest of the file renders as code"))
    return problems


def check_block(block: list[tuple[int, str]]) -> list[tuple[int, str]]:
    problems: list[tuple[int, str]] = []
    i = 0
    while i < len(block):
        number, line = block[i]
        if not PIPE_ROW.match(line):
            i += 1
            continue
        # A run of rows starting here: its first row is a header only if a
        # separator follows it.
        if i + 1 >= len(block) or not is_separator(block[i + 1][1]):
            problems.append(
                (number, "pipe rows without a header separator (|---|) under the first: they render as raw text "
                 "(a blank line inside a table cuts the rows after it off)")
            )
            while i < len(block) and PIPE_ROW.match(block[i][1]):
                i += 1
            continue
        width = len(cells(line))
        sep_number, sep = block[i + 1]
        if len(cells(sep)) != width:
            problems.append((sep_number, f"separator has {len(cells(sep))} cells, the header {width}: not a table"))
        i += 2
        while i < len(block):
            row_number, row = block[i]
            if not PIPE_ROW.match(row):
                problems.append((row_number, "text right under a table, with no blank line, becomes a table row"))
            elif len(cells(row)) != width:
                problems.append((row_number, f"row has {len(cells(row))} cells, the header {width}"))
            i += 1
    return problems


def tracked_markdown() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--", "*.md"], cwd=ROOT, capture_output=True, check=True
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: walk it
        names = [
            str(p.relative_to(ROOT))
            for p in ROOT.rglob("*.md")
            if not any(part.startswith(".") for part in p.relative_to(ROOT).parts)
        ]
    return [ROOT / n for n in sorted(names) if not n.startswith(SKIP) and "/node_modules/" not in n]


SAMPLES = {
    "blank line inside a table": "| a | b |\n|---|---|\n| 1 | 2 |\n\n| 3 | 4 |\n| 5 | 6 |\n",
    "no header separator": "| a | b |\n| 1 | 2 |\n",
    "row with an extra cell": "| a | b |\n|---|---|\n| 1 | 2 | 3 |\n",
    "row with a missing cell": "| a | b |\n|---|---|\n| 1 |\n",
    "separator of another width": "| a | b |\n|---|\n| 1 | 2 |\n",
    "text glued under a table": "| a | b |\n|---|---|\n| 1 | 2 |\nSee above.\n",
    "unclosed fence": "# t\n\n```sh\necho hi\n",
    "fence closed by a shorter marker": "````\ncode\n```\n",
}
GOOD = (
    "# t\n\n| a | `b\\|c` |\n|:---|---:|\n| 1 | 2 |\n\ntext\n\n```sh\n| not | a table\n```\n\n"
    "~~~\n```\n~~~\n\n    indented | code\n"
)


def self_test() -> int:
    failed = [name for name, text in SAMPLES.items() if not check(text)]
    if check(GOOD):
        failed.append(f"a correct file was flagged: {check(GOOD)}")
    for name in failed:
        print(f"check_markdown self-test: not caught: {name}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv == ["--self-test"]:
        return self_test()
    files = [Path(a) for a in argv] or tracked_markdown()
    found = 0
    for path in files:
        for number, problem in check(path.read_text(encoding="utf-8")):
            shown = path.relative_to(ROOT) if path.is_absolute() and path.is_relative_to(ROOT) else path
            print(f"{shown}:{number}: {problem}", file=sys.stderr)
            found += 1
    if found:
        print(f"check_markdown: {found} problem(s) in {len(files)} file(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
