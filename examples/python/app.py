"""An app behind Caddy and clerk_auth, standard library only.

It trusts the identity headers Caddy sets and answers them as JSON:

    python3 examples/python/app.py --port 8000

It listens on 127.0.0.1 only. The headers are trustworthy only because
nothing but Caddy can reach the app: clerk_auth deletes every client copy of
them (and their X_User_Id look-alikes) before setting them.
"""

import argparse
import json
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


class WhoAmI(BaseHTTPRequestHandler):
    def do_GET(self):
        who = identity(self.headers)
        # Behind clerk_auth (without `optional`) every request is signed in;
        # refusing requests without X-User-Id still guards against a
        # Caddyfile that forgets the directive.
        if who["user_id"] is None:
            self.reply(401, {"error": "not signed in"})
        else:
            self.reply(200, who)

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    args = parser.parse_args()
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
