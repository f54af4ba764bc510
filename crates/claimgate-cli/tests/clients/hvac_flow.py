"""hvac, the Python Vault client, against `claimgate serve`: log in with auth.jwt.jwt_login,
look the token up, renew it, revoke it; a revoked and a used-up token are refused on lookup.

Usage: hvac_flow.py BASE_URL MOUNT JWT_FOR_ROLE_DEPLOY JWT_FOR_ROLE_LIMITED
Prints one line per check; exits 1 on the first failure.
"""

import sys

import hvac
import hvac.exceptions

base, mount, jwt_deploy, jwt_limited = sys.argv[1:5]


def check(condition, what):
    if not condition:
        print(f"FAILED: {what}")
        sys.exit(1)
    print(f"ok: {what}")


client = hvac.Client(url=base)
login = client.auth.jwt.jwt_login(role="deploy", jwt=jwt_deploy, path=mount)
token = login["auth"]["client_token"]
check(token.startswith("hvs."), "jwt_login returns a service token")
check(client.token == token, "hvac adopts the token")
check(client.is_authenticated(), "is_authenticated() with the new token")
check(login["auth"]["policies"] == ["ci-base", "default", "deployer"], "policies as Vault sanitises them")

looked = client.auth.token.lookup_self()
check(looked["data"]["id"] == token, "lookup_self shows the token")
check(looked["data"]["meta"]["role"] == "deploy", "lookup_self shows the role in meta")

renewed = client.auth.token.renew_self(increment="1m")
check(renewed["auth"]["lease_duration"] == 60, "renew_self with an increment")
renewed = client.auth.token.renew_self()
check(renewed["auth"]["lease_duration"] == 900, "renew_self back to the role's ttl")

revoked = client.auth.token.revoke_self()
check(revoked.status_code == 204, "revoke_self answers 204")
check(not client.is_authenticated(), "a revoked token is not authenticated")
try:
    client.auth.token.lookup_self()
    check(False, "lookup_self with a revoked token raises")
except hvac.exceptions.Forbidden as e:
    check("permission denied" in str(e), "a revoked token is refused: Forbidden, permission denied")

# role=None: hvac sends "role": null, the server selects the role.
limited = hvac.Client(url=base)
login = limited.auth.jwt.jwt_login(role=None, jwt=jwt_limited, path=mount)
check(login["auth"]["num_uses"] == 5, "automatic role selection, num_uses 5")
for i in range(5):
    limited.auth.token.lookup_self()
try:
    limited.auth.token.lookup_self()
    check(False, "the sixth use raises")
except hvac.exceptions.Forbidden:
    check(True, "a used-up token is refused on lookup")

# A refused login raises InvalidRequest (400) with the stable code in the message.
try:
    hvac.Client(url=base).auth.jwt.jwt_login(role="deploy", jwt=jwt_limited, path=mount)
    check(False, "a refused login raises")
except hvac.exceptions.InvalidRequest as e:
    check("audience_mismatch" in str(e), f"a refused login is InvalidRequest with its code: {e}")
print("hvac: all checks passed")
