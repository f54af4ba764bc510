"""Verifies a Conjur access token from `claimgate serve` with joserfc (an independent JOSE
library) against the server's JWKS.

Usage: verify_conjur.py JWKS_FILE TOKEN_FILE [base64]
TOKEN_FILE holds the response body (the flattened JWS JSON, or its base64 with `base64`).
Prints the verified claims as JSON; exits 1 when the token does not verify.
"""

import base64
import json
import sys

from joserfc import jws
from joserfc.jwk import KeySet

jwks_file, token_file = sys.argv[1:3]
body = open(token_file, "rb").read()
if len(sys.argv) > 3 and sys.argv[3] == "base64":
    body = base64.b64decode(body, validate=True)
token = json.loads(body)
keys = KeySet.import_key_set(json.load(open(jwks_file)))
try:
    verified = jws.deserialize_json(token, keys, algorithms=["EdDSA"])
except Exception as e:  # any failure to verify is the answer
    print(f"FAILED: {type(e).__name__}: {e}")
    sys.exit(1)
# Conjur's own clients read the payload as standard padded base64 (conjur-api-go decodes it
# with `base64.StdEncoding`): it must give the same claims that way.
standard = json.loads(base64.b64decode(token["payload"], validate=True))
if standard != json.loads(verified.payload):
    print(f"FAILED: the payload reads differently as standard base64: {standard}")
    sys.exit(1)
print(json.dumps(json.loads(verified.payload)))
