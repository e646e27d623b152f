"""Times rolecalld from exec to its first answer on the socket, and a first
`rolecall credential-process` that has to autostart the daemon.

  startup_probe.py ready <rolecalld> <socket> <runs>      -> JSON list of ms
  startup_probe.py autostart <rolecall> <profile> <runs>  -> JSON list of ms

`ready`: the daemon binds its socket before it loads the vault and sources, so a client that
connects early waits in the listen backlog; the time to the reply of GET /v1/version is the
time until the daemon answers requests. Each run stops the daemon (POST /v1/shutdown) and
waits for it to exit before the next one.
"""
import json
import os
import socket
import subprocess
import sys
import time


def request(path, method="GET", timeout=5.0):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(SOCK)
    s.sendall(f"{method} {path} HTTP/1.1\r\nHost: rolecalld\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def ready(rolecalld, runs):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([rolecalld, "--foreground"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                reply = request("/v1/version")
                if reply.startswith(b"HTTP/1.1 200"):
                    break
            except (FileNotFoundError, ConnectionRefusedError):
                # Not bound yet: a short pause, so the probe does not take the CPU it measures.
                time.sleep(0.0002)
            if p.poll() is not None:
                sys.exit(f"rolecalld exited with {p.returncode} before answering")
            if time.perf_counter() - t0 > 10:
                p.kill()
                sys.exit("rolecalld did not answer within 10 s")
        out.append((time.perf_counter() - t0) * 1000)
        request("/v1/shutdown", "POST")
        p.wait(timeout=10)
    return out


def autostart(rolecall, profile, runs):
    out = []
    for _ in range(runs):
        subprocess.run([rolecall, "daemon", "stop"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.perf_counter()
        r = subprocess.run([rolecall, "credential-process", profile], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        t = (time.perf_counter() - t0) * 1000
        if r.returncode != 0 or b"SecretAccessKey" not in r.stdout:
            sys.exit(f"credential-process failed: {r.stderr.decode().strip()}")
        out.append(t)
    return out


if __name__ == "__main__":
    mode, binary, arg, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    if mode == "ready":
        SOCK = arg
        print(json.dumps(ready(binary, runs)))
    else:
        print(json.dumps(autostart(binary, arg, runs)))
