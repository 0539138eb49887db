#!/usr/bin/env python3
"""A stand-in for a node's kubelet: GET /pods over TLS on loopback.

Answers with the file named by --pods (read again at every request, so a
test can change it), after checking the bearer token in --token-file. The
file's content "HTTP 500" makes it answer 500. Prints "port N" once it
listens; logs one line per request to stdout ("GET /pods 200").
"""
import argparse
import http.server
import ssl
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--pods", required=True)
    args = ap.parse_args()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def answer(self, code, body):
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            print(f"GET {self.path} {code}", flush=True)

        def do_GET(self):
            token = open(args.token_file).read().strip()
            if self.headers.get("Authorization") != f"Bearer {token}":
                return self.answer(401, b'{"kind":"Status","code":401,"message":"Unauthorized"}')
            if self.path != "/pods":
                return self.answer(404, b"404 page not found")
            body = open(args.pods, "rb").read()
            if body.strip() == b"HTTP 500":
                return self.answer(500, b"internal error")
            return self.answer(200, body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"port {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
