#!/usr/bin/env python3
"""Renders a scripts/compat.sh run record (--json) as the Markdown table of docs/development.md.

    tools/compat_table.py docs/data/compat.json

Standard library only.
"""
import json
import sys


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    with open(argv[1]) as f:
        record = json.load(f)
    print("| torch | installed | result | tests | time |")
    print("|---|---|---|---|---|")
    for row in record["results"]:
        minutes = row["seconds"] / 60.0
        print(f"| {row['version']} | {row['installed']} | {row['result']} | {row['tests']} "
              f"| {minutes:.0f} min |")
    print()
    print(f"`{record['command']}` at commit `{record['commit']}`, {record['date']}, "
          f"{record['machine']}, {record['threads']} build and test jobs.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
