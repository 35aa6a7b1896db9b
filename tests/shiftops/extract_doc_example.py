#!/usr/bin/env python3
"""Copies the C++ example of docs/deepshift.md (the ```cpp block right after the marker comment)
into a source file, so that the test build compiles the documentation's code and a stale
example breaks the build. A #line directive makes compiler errors point into the Markdown.

    extract_doc_example.py <docs/deepshift.md> <output.cpp>
"""
import sys

MARKER = "<!-- compiled by tests/shiftops/test_doc_example.cpp -->"


def main(source, destination):
    with open(source, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if MARKER not in lines:
        sys.exit(f"{source}: the marker line '{MARKER}' is missing")
    start = lines.index(MARKER) + 1
    if start >= len(lines) or lines[start] != "```cpp":
        sys.exit(f"{source}:{start + 1}: expected a ```cpp block right after the marker")
    try:
        end = lines.index("```", start + 1)
    except ValueError:
        sys.exit(f"{source}:{start + 1}: the ```cpp block is never closed")
    code = [f'#line {start + 2} "{source}"'] + lines[start + 1:end]
    with open(destination, "w", encoding="utf-8") as f:
        f.write("\n".join(code) + "\n")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
