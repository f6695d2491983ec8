"""A tiny HTTP server that answers every GET with its own name: shows which backend served a request.

Run as ``python -m tests.integration.realworld.named_http_server NAME ADDRESS PORT``; tests start it as a
real process behind a real HAProxy.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(name: str, address: str, port: int) -> None:
    """Serve ``name`` on ``address:port`` until killed."""
    body = name.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet: tests read answers, not logs
            return

    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], int(sys.argv[3]))
