#!/usr/bin/env python3
"""Renders a scripts/compat.sh run record (--json) as the Markdown table of docs/development.md.

    tools/compat_table.py docs/data/compat.json                              # print the table
    tools/compat_table.py docs/data/compat.json --check docs/development.md  # fail if it differs

The check compares the text between `<!-- compat.json begin -->` and `<!-- compat.json end -->`.

Standard library only.
"""
import json
import sys


def render(record):
    lines = ["| torch | installed | result | tests | time |", "|---|---|---|---|---|"]
    for row in record["results"]:
        minutes = row["seconds"] / 60.0
        lines.append(f"| {row['version']} | {row['installed']} | {row['result']} "
                     f"| {row['tests']} | {minutes:.0f} min |")
    lines += ["", f"`{record['command']}` at commit `{record['commit']}`, {record['date']}, "
              f"{record['machine']}, {record['threads']} build and test jobs."]
    return lines


def main(argv):
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--check"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        lines = render(json.load(f))
    if len(argv) == 2:
        print("\n".join(lines))
        return 0
    with open(argv[3]) as f:
        text = f.read()
    begin, end = "<!-- compat.json begin -->", "<!-- compat.json end -->"
    if begin not in text or end not in text:
        print(f"compat_table: {argv[3]} has no {begin} ... {end}", file=sys.stderr)
        return 1
    if text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines() != lines:
        print(f"compat_table: the table in {argv[3]} differs from its record; it renders as:\n"
              + "\n".join(lines), file=sys.stderr)
        return 1
    print(f"compat_table: the table in {argv[3]} matches its record")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
