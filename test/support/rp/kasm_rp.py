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

  kasm_rp.py serve
      runs the application itself until killed (see serve() below): sign-in through the browser,
      "Logout with OIDC provider", and the back- and front-channel logout endpoints Kasm offers
      (/api/oidc_backchannel_logout, /api/oidc_frontchannel_logout); prints {"https_port", "http_port"}.

Failures print {"error": ..., "detail": ...} and exit 1, as an admin would see them in Kasm's log.

Environment: KASM_AUTHORIZATION_URL, KASM_TOKEN_URL, KASM_USERINFO_URL, KASM_CLIENT_ID,
KASM_CLIENT_SECRET, KASM_REDIRECT_URL, KASM_SCOPE (newline-separated, as in Kasm's field),
KASM_USERNAME_ATTRIBUTE (default preferred_username), KASM_GROUPS_ATTRIBUTE (default groups),
KASM_CA_BUNDLE (the CA that signed the identity provider's certificate), KASM_TOKEN_AUTH.
Host names resolve through the standard HTTPS_PROXY variable (the tests point it at a loopback
CONNECT proxy that maps *.example.com to 127.0.0.1; TLS stays end to end and names are verified).
"""
import base64
import http.server
import json
import os
import secrets
import ssl
import sys
import threading
import time
import urllib.parse

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


# ---------------------------------------------------------------------------- serve
# The running application: what Kasm's web server does around its OIDC settings. Its settings come
# from the file KASM_SERVE_CONFIG (JSON, read per request, so the test can write it once Latchkey
# listens): the same fields as above in lower case, plus issuer (Kasm's Issuer field),
# logout_with_oidc_provider (Kasm's switch) and post_logout_url. Sessions live in memory.

SESSIONS = {}  # cookie value -> {"username", "sub", "sid", "id_token"}
PENDING = {}   # state -> True
EVENTS = []    # every logout notification received, verified or not
SEEN_JTI = set()
LOCK = threading.Lock()
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


def settings():
    with open(os.environ["KASM_SERVE_CONFIG"]) as f:
        return json.load(f)


def b64d(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def http_get_json(url, cfg):
    res = requests.get(url, verify=cfg["ca_bundle"], timeout=5)
    res.raise_for_status()
    return res.json()


def verify_jws(token, cfg, typ=None):
    """Verifies an RS256 JWS against the issuer's JWKS (python3-cryptography); returns (header, claims)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWS")
    header, claims = json.loads(b64d(parts[0])), json.loads(b64d(parts[1]))
    if header.get("alg") != "RS256":
        raise ValueError(f"unexpected alg {header.get('alg')}")
    if typ is not None and header.get("typ") != typ:
        raise ValueError(f"typ is {header.get('typ')}, expected {typ}")
    discovery = http_get_json(cfg["issuer"] + "/.well-known/openid-configuration", cfg)
    jwks = http_get_json(discovery["jwks_uri"], cfg)
    key = next((k for k in jwks["keys"] if k.get("kid") == header.get("kid")), None)
    if key is None:
        raise ValueError("kid not in the JWKS")
    public = rsa.RSAPublicNumbers(int.from_bytes(b64d(key["e"]), "big"), int.from_bytes(b64d(key["n"]), "big")).public_key()
    public.verify(b64d(parts[2]), (parts[0] + "." + parts[1]).encode(), padding.PKCS1v15(), hashes.SHA256())
    if claims.get("iss") != cfg["issuer"]:
        raise ValueError("wrong iss")
    aud = claims.get("aud")
    if cfg["client_id"] not in (aud if isinstance(aud, list) else [aud]):
        raise ValueError("wrong aud")
    return header, claims


def check_logout_token(token, cfg):
    """Back-Channel Logout 1.0 §2.6 as a relying party validates it."""
    _, claims = verify_jws(token, cfg, typ="logout+jwt")
    now = time.time()
    if not isinstance(claims.get("iat"), int) or claims["iat"] > now + 60:
        raise ValueError("bad iat")
    if not isinstance(claims.get("exp"), int) or claims["exp"] < now:
        raise ValueError("expired")
    if BACKCHANNEL_EVENT not in (claims.get("events") or {}):
        raise ValueError("no back-channel logout event")
    if "nonce" in claims:
        raise ValueError("a logout token must not carry a nonce")
    if not claims.get("sid") and not claims.get("sub"):
        raise ValueError("neither sid nor sub")
    with LOCK:
        if claims.get("jti") in SEEN_JTI:
            raise ValueError("jti replayed")
        SEEN_JTI.add(claims.get("jti"))
    return claims


def drop_sessions(sid=None, sub=None):
    with LOCK:
        gone = [k for k, v in SESSIONS.items() if (sid and v["sid"] == sid) or (not sid and sub and v["sub"] == sub)]
        for k in gone:
            del SESSIONS[k]
    return len(gone)


class App(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def cookie(self):
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "kasm_session":
                return value
        return None

    def send(self, status, body=b"", ctype="text/plain; charset=utf-8", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location, headers=()):
        self.send(302, headers=[("Location", location), *headers])

    def do_GET(self):
        cfg = settings()
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        with LOCK:
            mine = SESSIONS.get(self.cookie() or "")
        if url.path == "/":
            text = f"Signed in to Kasm as {mine['username']}" if mine else "Signed out of Kasm"
            return self.send(200, f"<!doctype html><title>Kasm</title><p id=status>{text}</p><a href=/login>Sign in</a> <a href=/logout>Sign out</a>".encode(), "text/html; charset=utf-8")
        if url.path == "/login":
            oauth = OAuth2Session(cfg["client_id"], redirect_uri=cfg["redirect_url"], scope=cfg["scope"].split())
            location, state = oauth.authorization_url(cfg["issuer"] + "/api/oidc/authorization")
            with LOCK:
                PENDING[state] = True
            return self.redirect(location)
        if url.path == "/api/oidc_callback":
            state = query.get("state", "")
            with LOCK:
                known = PENDING.pop(state, None)
            if not known:
                return self.send(400, b"unknown state")
            oauth = OAuth2Session(cfg["client_id"], redirect_uri=cfg["redirect_url"], scope=cfg["scope"].split(), state=state)
            try:
                token = oauth.fetch_token(cfg["issuer"] + "/api/oidc/token", authorization_response=cfg["redirect_url"] + "?" + url.query,
                                          client_secret=cfg["client_secret"], verify=cfg["ca_bundle"])
                _, claims = verify_jws(token["id_token"], cfg)
            except Exception as e:  # noqa: BLE001 - shown to the test as Kasm would log it
                return self.send(400, f"sign-in failed: {e}".encode())
            value = secrets.token_urlsafe(24)
            with LOCK:
                SESSIONS[value] = {"username": claims.get("preferred_username") or claims["sub"], "sub": claims["sub"], "sid": claims.get("sid"), "id_token": token["id_token"]}
            return self.redirect("/", [("Set-Cookie", f"kasm_session={value}; Path=/; HttpOnly; Secure; SameSite=Lax")])
        if url.path == "/logout":
            with LOCK:
                SESSIONS.pop(self.cookie() or "", None)
            clear = [("Set-Cookie", "kasm_session=; Path=/; Max-Age=0; Secure")]
            if not (mine and cfg.get("logout_with_oidc_provider")):
                return self.redirect("/", clear)
            # Kasm's "Logout with OIDC provider": the end_session_endpoint of the Issuer's discovery.
            end = http_get_json(cfg["issuer"] + "/.well-known/openid-configuration", cfg)["end_session_endpoint"]
            params = {"id_token_hint": mine["id_token"], "post_logout_redirect_uri": cfg["post_logout_url"], "state": secrets.token_urlsafe(12)}
            return self.redirect(end + "?" + urllib.parse.urlencode(params), clear)
        if url.path == "/api/oidc_frontchannel_logout":
            event = {"channel": "front", "iss": query.get("iss"), "sid": query.get("sid")}
            if query.get("iss") != cfg["issuer"] or not query.get("sid"):
                event["error"] = "iss or sid missing or wrong"
            else:
                event["dropped"] = drop_sessions(sid=query["sid"])
            with LOCK:
                EVENTS.append(event)
            return self.send(200, b"<!doctype html><title>logged out</title>", "text/html; charset=utf-8")
        if url.path == "/api/session":
            body = {"signed_in": bool(mine), **({"username": mine["username"], "sid": mine["sid"]} if mine else {})}
            return self.send(200, json.dumps(body).encode(), "application/json")
        if url.path == "/api/events":
            with LOCK:
                return self.send(200, json.dumps({"events": EVENTS, "sessions": len(SESSIONS)}).encode(), "application/json")
        return self.send(404, b"not found")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/api/oidc_backchannel_logout":
            return self.send(404, b"not found")
        length = int(self.headers.get("Content-Length") or 0)
        form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
        event = {"channel": "back", "content_type": self.headers.get("Content-Type")}
        try:
            claims = check_logout_token(form.get("logout_token", ""), settings())
            event.update({"claims": claims, "dropped": drop_sessions(sid=claims.get("sid"), sub=claims.get("sub"))})
            status = 200
        except Exception as e:  # noqa: BLE001 - §2.8: 400 for a token the RP refuses
            event["error"] = str(e) or type(e).__name__
            status = 400
        with LOCK:
            EVENTS.append(event)
        return self.send(status, json.dumps({k: v for k, v in event.items() if k != "claims"}).encode(), "application/json")


def serve():
    """HTTPS for the browser (KASM_TLS_CERT/KEY, as kasm.example.com), plain HTTP on loopback for the back channel."""
    https = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(env("KASM_TLS_CERT"), env("KASM_TLS_KEY"))
    https.socket = tls.wrap_socket(https.socket, server_side=True)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), App)
    for server in (https, plain):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"https_port": https.server_address[1], "http_port": plain.server_address[1]}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve()
    elif sys.argv[1:2] == ["authorize"]:
        authorize()
    elif sys.argv[1:2] == ["callback"] and len(sys.argv) == 4:
        callback(sys.argv[2], sys.argv[3])
    else:
        fail("usage", "kasm_rp.py authorize | kasm_rp.py callback CALLBACK_URL STATE | kasm_rp.py serve")
