"""The section of a Markdown page between `<!-- NAME begin -->` and `<!-- NAME end -->`, where the
tools that render tables from run records (panel.py, sweep.py, bench_table.py, compat_table.py)
keep their tables, and the check that it holds what they render. Standard library only.
"""
import sys


def check_section(doc, name, rendered, tool):
    """0 when DOC's section NAME holds the lines `rendered`; else 1, with them on stderr."""
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    with open(doc) as f:
        text = f.read()
    if begin not in text or end not in text:
        print(f"{tool}: {doc} has no {begin} ... {end}", file=sys.stderr)
        return 1
    if text.split(begin, 1)[1].split(end, 1)[0].strip().splitlines() != rendered:
        print(f"{tool}: the {name} table in {doc} differs from its records; it renders as:\n"
              + "\n".join(rendered), file=sys.stderr)
        return 1
    print(f"{tool}: the {name} table in {doc} matches its records")
    return 0
