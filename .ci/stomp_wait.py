#!/usr/bin/env python3
"""Waits until a STOMP broker answers CONNECT with CONNECTED (used by .ci/activemq.sh).

Usage: stomp_wait.py HOST PORT DEADLINE_SECONDS [CA_FILE]
With CA_FILE the connection uses TLS, verifying the broker against that CA as "localhost".
Exits 0 once CONNECTED arrives, 1 when the deadline passes (printing the last problem).
"""

import socket
import ssl
import sys
import time


def try_connect(host, port, ca_file):
    sock = socket.create_connection((host, port), timeout=2)
    try:
        if ca_file:
            context = ssl.create_default_context(cafile=ca_file)
            sock = context.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(b"CONNECT\naccept-version:1.2\nhost:localhost\nheart-beat:0,0\n\n\0")
        received = b""
        while b"\0" not in received:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed before answering CONNECT")
            received += chunk
        if not received.lstrip(b"\r\n").startswith(b"CONNECTED"):
            raise ConnectionError("answered %r" % received[:200])
        sock.sendall(b"DISCONNECT\n\n\0")
    finally:
        sock.close()


def main():
    host, port, deadline = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    ca_file = sys.argv[4] if len(sys.argv) > 4 else None
    give_up_at = time.monotonic() + deadline
    last_problem = "never tried"
    while time.monotonic() < give_up_at:
        try:
            try_connect(host, port, ca_file)
            return 0
        except (OSError, ConnectionError, ssl.SSLError) as problem:
            last_problem = str(problem)
            time.sleep(0.1)
    print("stomp on %s:%d not ready: %s" % (host, port, last_problem), file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
