#!/usr/bin/env python3
"""Renders a scripts/compat.sh run record (--json) as the Markdown table of docs/development.md.

    tools/compat_table.py docs/data/compat.json                              # print the table
    tools/compat_table.py docs/data/compat.json --check docs/development.md  # fail if it differs

The check compares the text between `<!-- compat.json begin -->` and `<!-- compat.json end -->`.

Standard library only.
"""
import json
import sys

from doc_section import check_section


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
    return check_section(argv[3], "compat.json", lines, "compat_table")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
