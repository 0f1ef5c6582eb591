#!/usr/bin/python3
"""A relying party shaped like Kasm Workspaces' backend, on Debian's python3-requests-oauthlib.

Kasm's OIDC settings are plain fields an admin fills in (no discovery): Authorization URL, Token
URL, User Info URL, Scope (one per line), Username Attribute, Groups Attribute, Client ID, Client
Secret, Redirect URL. This script takes the same fields from the environment and does what such a
backend does, nothing more:

  kasm_rp.py authorize
      prints {"url": <authorization URL to send the browser to>, "state": <state>}
  kasm_rp.py callback CALLBACK_URL STATE
      redeems the code at the Token URL with the client secret (HTTP Basic, or in the form body when
      KASM_TOKEN_AUTH=client_secret_post), reads the User Info URL as plain JSON and prints
      {"username": ..., "groups": [...], "email": ..., "userinfo": {...}, "token_fields": [...]}

Failures print {"error": ..., "detail": ...} and exit 1, as an admin would see them in Kasm's log.

Environment: KASM_AUTHORIZATION_URL, KASM_TOKEN_URL, KASM_USERINFO_URL, KASM_CLIENT_ID,
KASM_CLIENT_SECRET, KASM_REDIRECT_URL, KASM_SCOPE (newline-separated, as in Kasm's field),
KASM_USERNAME_ATTRIBUTE (default preferred_username), KASM_GROUPS_ATTRIBUTE (default groups),
KASM_CA_BUNDLE (the CA that signed the identity provider's certificate), KASM_TOKEN_AUTH.
Host names resolve through the standard HTTPS_PROXY variable (the tests point it at a loopback
CONNECT proxy that maps *.example.com to 127.0.0.1; TLS stays end to end and names are verified).
"""
import json
import os
import sys

import requests
from requests_oauthlib import OAuth2Session


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        fail("configuration", f"{name} is not set")
    return value


def fail(error, detail):
    print(json.dumps({"error": error, "detail": detail}))
    sys.exit(1)


def session(state=None):
    scopes = [s.strip() for s in env("KASM_SCOPE").splitlines() if s.strip()]
    oauth = OAuth2Session(env("KASM_CLIENT_ID"), redirect_uri=env("KASM_REDIRECT_URL"), scope=scopes, state=state)
    oauth.verify = env("KASM_CA_BUNDLE", True)
    return oauth


def authorize():
    url, state = session().authorization_url(env("KASM_AUTHORIZATION_URL"))
    print(json.dumps({"url": url, "state": state}))


def callback(callback_url, state):
    oauth = session(state)
    post = env("KASM_TOKEN_AUTH", "client_secret_basic") == "client_secret_post"
    try:
        token = oauth.fetch_token(
            env("KASM_TOKEN_URL"),
            authorization_response=callback_url,
            client_secret=env("KASM_CLIENT_SECRET"),
            include_client_id=True if post else None,
            # fetch_token's own verify=True would win over the session's setting.
            verify=env("KASM_CA_BUNDLE", True),
        )
    except requests.exceptions.SSLError as e:
        fail("tls", str(e))
    except Exception as e:  # oauthlib raises one class per OAuth error code
        fail(getattr(e, "error", type(e).__name__), getattr(e, "description", None) or str(e))
    res = oauth.get(env("KASM_USERINFO_URL"))
    if res.status_code != 200:
        fail("userinfo", f"{res.status_code} {res.text}")
    try:
        userinfo = res.json()
    except ValueError:
        fail("userinfo", f"not JSON: {res.headers.get('content-type')}")
    username = userinfo.get(env("KASM_USERNAME_ATTRIBUTE", "preferred_username"))
    if not username:
        fail("userinfo", "no username attribute in userinfo")
    print(json.dumps({
        "username": username,
        "groups": userinfo.get(env("KASM_GROUPS_ATTRIBUTE", "groups"), []),
        "email": userinfo.get("email"),
        "userinfo": userinfo,
        "token_fields": sorted(token.keys()),
    }))


if __name__ == "__main__":
    if sys.argv[1:2] == ["authorize"]:
        authorize()
    elif sys.argv[1:2] == ["callback"] and len(sys.argv) == 4:
        callback(sys.argv[2], sys.argv[3])
    else:
        fail("usage", "kasm_rp.py authorize | kasm_rp.py callback CALLBACK_URL STATE")
