"""An app behind Caddy and clerk_auth that answers the caller's identity as JSON.

By default it trusts the identity headers Caddy sets, with the standard
library only:

    python3 examples/python/app.py --port 8000

The headers are trustworthy only because nothing but Caddy can reach the app:
clerk_auth deletes every client copy of them (and their X_User_Id
look-alikes) before setting them.

With --jwks-url it instead verifies the identity assertion that clerk_auth's
identity_assertion signs, and ignores those headers (needs PyJWT and
cryptography: Debian python3-jwt python3-cryptography, or pip install
"pyjwt[crypto]"):

    python3 examples/python/app.py \
        --jwks-url http://127.0.0.1:8080/.well-known/clerk-identity/jwks.json \
        --audience https://app.internal --issuer http://127.0.0.1:8080

It listens on 127.0.0.1 only.
"""

import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

# JSON field -> the header Caddy's forward_header line sets.
IDENTITY_HEADERS = {
    "user_id": "X-User-Id",
    "session_id": "X-Session-Id",
    "org_id": "X-Org-Id",
    "org_role": "X-Org-Role",
}


def identity(headers):
    """The caller's identity; None (JSON null) where the token has no claim."""
    found = {field: headers.get(name) or None for field, name in IDENTITY_HEADERS.items()}
    roles = headers.get("X-User-Roles")
    # A list placeholder percent-encodes '%' and ',' (and a few more) inside
    # each element, so a role named "viewer,admin" stays one.
    found["roles"] = [unquote(r) for r in roles.split(",")] if roles else []
    return found


class KeysUnavailable(Exception):
    """The key set could not be had: Caddy down or unreachable, a timeout, an
    answer other than 200, or a body that is no key set. An outage, not a
    bad assertion: the app answers 503 with Retry-After, never 401, so that
    a client retries instead of signing the user out."""


class AssertionVerifier:
    """Checks clerk_auth's identity assertions against the key set Caddy publishes."""

    LEEWAY = 5  # seconds of clock skew allowed on exp, iat and nbf
    # The least time between two fetches forced by a kid the cached key set
    # lacks. Caddy publishes a key 12 hours before it signs with it, so such
    # a kid is, but after an emergency key change, a made-up one: a flood of
    # them must cost Caddy one fetch, not one each (PyJWKClient alone
    # refetches for every one).
    REFETCH_EVERY = 30

    def __init__(self, jwks_url, audience, issuer, header):
        import jwt  # PyJWT: only this mode needs it

        self.jwt = jwt
        # Fetched on first use, so the app may start before Caddy, and kept
        # for 5 minutes.
        self.keys = jwt.PyJWKClient(jwks_url, lifespan=300)
        # Older PyJWT, Debian 12's 2.6 among them, fetches without a
        # timeout: a Caddy that never answers would hang requests instead
        # of making them 503. This bounds every socket of the app, its own
        # clients' too, which suits a server.
        socket.setdefaulttimeout(10)
        self.refetched = None  # time.monotonic() of the last forced fetch
        self.lock = threading.Lock()
        self.audience, self.issuer, self.header = audience, issuer, header

    def identity(self, headers):
        """The caller stated by the verified assertion; raises PermissionError,
        or KeysUnavailable."""
        token = headers.get(self.header)
        if not token:
            raise PermissionError("not signed in")
        try:
            key = self.signing_key(self.jwt.get_unverified_header(token).get("kid"))
            # ES256 only: "none", HS256 keyed with the public key, or any
            # other alg the token names is refused before any check.
            claims = self.jwt.decode(
                token,
                key.key,
                algorithms=["ES256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except self.jwt.PyJWTError as e:
            # The details are for the log only, never the token itself.
            print(f"identity assertion refused: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            raise PermissionError("invalid identity assertion") from None
        roles = claims.get("roles")
        return {
            "user_id": claims["sub"],
            "session_id": claims.get("sid"),
            "org_id": claims.get("org_id"),
            "org_role": claims.get("org_role"),
            "roles": [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else [],
        }

    def signing_key(self, kid):
        """The key named kid; one the cached set lacks is fetched anew, at
        most once per REFETCH_EVERY."""
        key = self.find(kid, refresh=False)
        if key is None and self.may_refetch():
            key = self.find(kid, refresh=True)
        if key is None:
            raise self.jwt.InvalidTokenError(f"no key {kid!r} in the key set")
        return key

    def find(self, kid, refresh):
        try:
            keys = self.keys.get_signing_keys(refresh=refresh)
        except (self.jwt.PyJWTError, OSError, ValueError) as e:
            # Only the key set is at stake here, never the token.
            print(f"identity assertion not checked: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            raise KeysUnavailable("identity assertion keys unavailable") from None
        return next((k for k in keys if k.key_id == kid), None)

    def may_refetch(self):
        with self.lock:
            now = time.monotonic()
            if self.refetched is not None and now - self.refetched < self.REFETCH_EVERY:
                return False
            self.refetched = now
            return True


class WhoAmI(BaseHTTPRequestHandler):
    verifier = None  # an AssertionVerifier: verify instead of trusting headers

    def do_GET(self):
        # Behind clerk_auth (without `optional`) every request is signed in;
        # refusing the others still guards against a Caddyfile that forgets
        # the directive, or a client that reaches the app directly.
        if self.verifier is not None:
            try:
                who = self.verifier.identity(self.headers)
            except PermissionError as e:
                self.reply(401, {"error": str(e)})
                return
            except KeysUnavailable as e:
                # An outage, not a sign-out: the client should retry shortly.
                self.reply(503, {"error": str(e)}, retry_after=5)
                return
        else:
            who = identity(self.headers)
            if who["user_id"] is None:
                self.reply(401, {"error": "not signed in"})
                return
        self.reply(200, who)

    def reply(self, status, body, retry_after=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument(
        "--jwks-url",
        default=os.environ.get("IDENTITY_JWKS_URL"),
        help="verify identity assertions with this JWKS (Caddy's clerk_identity_jwks); unset: trust the identity headers",
    )
    parser.add_argument(
        "--audience",
        default=os.environ.get("IDENTITY_AUDIENCE"),
        help="the assertion's required aud: identity_assertion's audience for this app",
    )
    parser.add_argument(
        "--issuer",
        default=os.environ.get("IDENTITY_ISSUER"),
        help="the assertion's required iss: identity_assertion's issuer, by default Caddy's origin",
    )
    parser.add_argument(
        "--header",
        default=os.environ.get("IDENTITY_HEADER", "X-Clerk-Identity"),
        help="the header carrying the assertion",
    )
    args = parser.parse_args()
    if args.jwks_url:
        if not args.audience or not args.issuer:
            # Without them an assertion meant for another app, or made by
            # another gateway, would pass.
            parser.error("--jwks-url needs --audience and --issuer")
        WhoAmI.verifier = AssertionVerifier(args.jwks_url, args.audience, args.issuer, args.header)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), WhoAmI)
    host, port = server.server_address[:2]
    print(f"listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
