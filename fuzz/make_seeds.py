#!/usr/bin/env python3
"""Writes the committed seed corpora under fuzz/seeds/<target>/ from the repository's own inputs.

Run from anywhere: `python3 fuzz/make_seeds.py`. It deletes and rewrites fuzz/seeds/. Sources:
policies/*.cg and crates/claimgate/tests/cases/**/*.cg for the policy targets; the compact tokens
and keys of the Wycheproof and RFC 7520 vectors and the committed test keys of claimgate-jose for
the token and key targets; the claims of every policy test (and the shared example claim sets,
when ../shared/examples is there) for the evaluation target; the example policies compiled by
`claimgate compile` (so this builds the CLI) for the loader. Deterministic: the same repository
gives the same seeds.
"""

import hashlib
import json
import random
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
VECTORS = ROOT / "crates" / "claimgate-jose" / "tests" / "vectors"
KEYS = ROOT / "crates" / "claimgate-jose" / "tests" / "keys"

COMPACT = re.compile(r"^[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*$")


def write(target, name, data):
    if isinstance(data, str):
        data = data.encode()
    directory = SEEDS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def digest(data):
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha1(data).hexdigest()[:16]


def walk(value):
    """Every string and every object in a JSON document."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from walk(v)
    elif isinstance(value, list):
        for v in value:
            yield from walk(v)
    else:
        yield value


def vector_documents():
    for path in sorted(VECTORS.rglob("*.json")):
        yield path, json.loads(path.read_text())


def main():
    shutil.rmtree(SEEDS, ignore_errors=True)

    # Policy text: every example policy and every test case file.
    policies = sorted((ROOT / "policies").glob("*.cg"))
    policies += sorted((ROOT / "crates" / "claimgate" / "tests" / "cases").rglob("*.cg"))
    for path in policies:
        name = str(path.relative_to(ROOT)).replace("/", "_")
        for target in ("policy_source", "format_roundtrip"):
            write(target, name, path.read_bytes())

    # Compact tokens from the vectors, and key material (JWKs, JWK Sets) found in them.
    tokens, keys = {}, {}
    for _, document in vector_documents():
        for value in walk(document):
            if isinstance(value, str) and COMPACT.match(value) and len(value) > 10:
                tokens[digest(value)] = value
            elif isinstance(value, dict) and ("kty" in value or "keys" in value):
                text = json.dumps(value, sort_keys=True)
                keys[digest(text)] = text
    for key, token in sorted(tokens.items()):
        write("jws_verify", f"raw-{key}", b"\x00" + token.encode())
        write("decode_unverified", f"token-{key}", token)
    for key, text in sorted(keys.items()):
        write("keys", f"jwk-{key}.json", text)
    # A few JWKs also as one-key sets, and sets as single JWKs (the other loader's input).
    for key, text in sorted(keys.items())[:12]:
        value = json.loads(text)
        other = value["keys"][0] if "keys" in value and value["keys"] else {"keys": [value]}
        write("keys", f"jwk-other-{key}.json", json.dumps(other))
    for path in sorted(KEYS.iterdir()):
        write("keys", path.name, path.read_bytes())
    for path in sorted((ROOT / "policies" / "keys").iterdir()):
        write("keys", path.name, path.read_bytes())

    # Structured jws_verify inputs: an odd first byte, then bytes that `arbitrary` reads as a plan.
    rng = random.Random(20261123)
    for i in range(48):
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(4, 72)))
        write("jws_verify", f"plan-{i:02}", b"\x01" + body)

    # Claims for the evaluation target: every `claims = """..."""` of a policy test, and the
    # realistic claim sets shared between projects.
    claim_sets = {}
    for path in policies:
        for match in re.finditer(r'claims\s*=\s*"""(.*?)"""', path.read_text(), re.S):
            text = match.group(1).strip()
            claim_sets[digest(text)] = text
    shared = ROOT.parent / "shared" / "examples"
    for path in sorted(shared.glob("*.json")) if shared.is_dir() else []:
        claim_sets[f"shared-{path.stem}"] = path.read_text()
    for key, text in sorted(claim_sets.items()):
        write("evaluate", f"claims-{key}.json", text)

    # Compiled example policies for the loader: whole files (which the harness loads as they are)
    # and their payloads alone (which it wraps in a correct header, so mutations pass the checksum).
    with tempfile.TemporaryDirectory() as scratch:
        for path in sorted((ROOT / "policies").glob("*.cg")):
            out = Path(scratch) / (path.stem + ".cgb")
            subprocess.run(
                ["cargo", "run", "--quiet", "-p", "claimgate-cli", "--", "compile", str(path), "-o", str(out)],
                cwd=ROOT,
                check=True,
            )
            data = out.read_bytes()
            write("load_program", f"{path.stem}.cgb", data)
            # The header is 52 bytes: magic 8, version 4, length 8, SHA-256 32 (program.rs).
            write("load_program", f"{path.stem}.payload", data[52:])

    # Claims payloads for check_payload_json.
    payloads = [
        '{"iss":"https://gitlab.example.com","aud":"strongbox","sub":"project_path:g/p:ref_type:branch:ref:main"}',
        '{"a":{"b":{"c":[1,2,{"d":null}]}},"e":1e308,"f":-0,"g":"\\u0061"}',
        '{"sub":"a","sub":"b"}',
        '{"sub":"a","\\u0073ub":"b"}',
        "[1]",
        '{"x":' * 40 + "1" + "}" * 40,
    ]
    for i, payload in enumerate(payloads):
        write("decode_unverified", f"payload-{i}", payload)


if __name__ == "__main__":
    main()
