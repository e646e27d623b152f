"""A fake rolecalld, as another local user would plant it (tests/e2e/local_users.rs).

Started as root: creates the socket (and, with --make-dir, its directory), hands both to
--uid, drops to that uid and only then listens, so that the kernel reports --uid as the
socket's owner (SO_PEERCRED names the process that called listen()). Answers every request
with fake credentials (and /v1/version with --protocol and --pid), except POST /v1/shutdown,
which it drops without a reply. Each request line is appended to --log; "ready" on stdout
once it listens.
"""

import argparse
import json
import os
import socket

CREDS = {
    "Version": 1,
    "AccessKeyId": "ASIAPLANTEDBYNOBODY1",
    "SecretAccessKey": "planted-secret",
    "SessionToken": "planted-token",
    "Expiration": "2099-01-01T00:00:00Z",
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--uid", type=int, required=True)
    ap.add_argument("--make-dir", action="store_true")
    ap.add_argument("--dir-mode", default="755")
    ap.add_argument("--log", required=True)
    ap.add_argument("--protocol", type=int, default=1)
    ap.add_argument("--pid", type=int, default=0)
    a = ap.parse_args()

    d = os.path.dirname(a.socket)
    if a.make_dir:
        os.mkdir(d)
        os.chmod(d, int(a.dir_mode, 8))
        os.chown(d, a.uid, a.uid)
    log = open(a.log, "a", buffering=1)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(a.socket)
    os.chmod(a.socket, 0o666)
    os.chown(a.socket, a.uid, a.uid)
    if a.uid != os.getuid():
        os.setgroups([])
        os.setgid(a.uid)
        os.setuid(a.uid)
    s.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = s.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                try:
                    chunk = conn.recv(65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                data += chunk
            if not data:
                continue  # a probe: connected and closed
            head, _, body = data.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for h in lines[1:]:
                k, _, v = h.partition(":")
                if k.strip().lower() == "content-length":
                    length = int(v.strip())
            while len(body) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            log.write(lines[0] + ("  BODY " + body.decode("latin-1") if body else "") + "\n")
            if lines[0].startswith("POST /v1/shutdown"):
                continue
            if lines[0].startswith("GET /v1/version"):
                reply = {"version": "9.9.9", "protocol": a.protocol, "pid": a.pid}
            else:
                reply = CREDS
            payload = json.dumps(reply).encode()
            try:
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + b"x-rolecall-protocol: %d\r\ncontent-length: %d\r\n\r\n" % (a.protocol, len(payload))
                    + payload
                )
            except OSError:
                pass


if __name__ == "__main__":
    main()
