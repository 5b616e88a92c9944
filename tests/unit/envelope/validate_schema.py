#!/usr/bin/env python3
"""Validates JSON files against schemas/envelope.schema.json (JSON Schema 2020-12).

usage: validate_schema.py [--strict] SCHEMA FILE...

--strict also forbids keys the schema does not declare (additionalProperties:
false on every object that lists properties, except where the schema says
otherwise), so the test proves the schema describes everything the encoder
writes. The published schema stays open: consumers must ignore new keys.
Exit status 0 when every file is valid; each problem is printed as
FILE: PATH: MESSAGE.
"""
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    # A pyenv or venv python3 may come first in PATH; Debian's has python3-jsonschema.
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
    sys.exit("validate_schema.py: the jsonschema module is missing (Debian package python3-jsonschema)")


def strictify(node):
    if isinstance(node, dict):
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for key, value in node.items():
            if key != "if":  # a condition must keep matching objects with more keys
                strictify(value)
    elif isinstance(node, list):
        for value in node:
            strictify(value)


def main(argv):
    strict = "--strict" in argv
    args = [a for a in argv if a != "--strict"]
    if len(args) < 2:
        sys.exit(__doc__)
    with open(args[0], encoding="utf-8") as f:
        schema = json.load(f)
    validator_class = jsonschema.Draft202012Validator
    validator_class.check_schema(schema)
    if strict:
        strictify(schema)
    validator = validator_class(schema)
    failures = 0
    for path in args[1:]:
        with open(path, encoding="utf-8") as f:
            instance = json.load(f)
        for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            print(f"{path}: {where}: {error.message}")
            failures += 1
    print(f"validate_schema.py: {len(args) - 1} files, {failures} problems{' (strict)' if strict else ''}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
