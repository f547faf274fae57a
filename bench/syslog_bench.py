#!/usr/bin/env python3
"""Syslog ingest benchmark: syslog-ng's loggen sending RFC 5424 to seclog at its maximum rate.

    python3 bench/syslog_bench.py                # 60 s over TCP, then 60 s over TLS
    python3 bench/syslog_bench.py --seconds 10   # a quick run

For each transport, loggen (one connection, 200-byte messages, RFC 5424 with octet counting)
sends as fast as it can for the given time; then seclog is stopped and the events its journal
holds are counted (`seclog groups`). Reported: loggen's count and rate, the stored count, and
the loss (sent - stored, which must be 0).

loggen comes from Debian's syslog-ng-core, which conflicts with rsyslog: the packages are
downloaded and unpacked into the work directory instead of installed (`apt-get download`,
`dpkg -x`). TLS certificates are made with openssl(1).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PACKAGES = ["syslog-ng-core", "libivykis0", "libnet1", "libwrap0", "libpcre3"]


def log(message):
    print(message, file=sys.stderr, flush=True)


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(port):
    """Waits (up to 20 s) until seclog on `port` answers /healthz."""
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"seclog on port {port} did not become healthy")


def loggen(work):
    """Path to loggen and its environment, unpacking the Debian packages once."""
    root = os.path.join(work, "syslog-ng")
    binary = os.path.join(root, "usr", "bin", "loggen")
    if not os.path.exists(binary):
        os.makedirs(root, exist_ok=True)
        debs = os.path.join(work, "debs")
        os.makedirs(debs, exist_ok=True)
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=debs, check=True, capture_output=True)
        for deb in os.listdir(debs):
            subprocess.run(["dpkg", "-x", os.path.join(debs, deb), root], check=True)
    libs = [os.path.join(root, "usr", "lib", "x86_64-linux-gnu"), os.path.join(root, "usr", "lib", "syslog-ng"), os.path.join(root, "lib", "x86_64-linux-gnu")]
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(libs), SYSLOGNG_PREFIX=os.path.join(root, "usr"))
    return binary, env


def certificates(work):
    cert, key = os.path.join(work, "server.pem"), os.path.join(work, "server.key")
    if not os.path.exists(cert):
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, capture_output=True,
        )
    return cert, key


def stop(server):
    server.terminate()
    server.wait(timeout=120)


def stored_events(binary, data, prefix):
    """Events stored in the groups whose names start with `prefix` (read with the server stopped)."""
    groups = subprocess.run([binary, "groups", "--data", data], capture_output=True, text=True, check=True).stdout
    return sum(int(line.rsplit(" ", 1)[1]) for line in groups.splitlines() if line.startswith(prefix))


def run(work, binary, transport, seconds):
    data = os.path.join(work, f"data-{transport}")
    shutil.rmtree(data, ignore_errors=True)
    http, port = free_port(), free_port()
    cert, key = certificates(work)
    flag = "--syslog-tcp" if transport == "tcp" else "--syslog-tls"
    args = [binary, "serve", "--data", data, "--http", f"127.0.0.1:{http}", flag, f"127.0.0.1:{port}"]
    if transport == "tls":
        args += ["--tls-cert", cert, "--tls-key", key]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, f"serve-{transport}.log"), "w"))
    try:
        wait_healthy(http)
        generator, env = loggen(work)
        # -P: RFC 5424 with octet counting; -S: stream; -i: IPv4 (TCP); -U alone: TLS.
        mode = ["-i", "-S"] if transport == "tcp" else ["-U"]
        command = [generator, *mode, "-P", "-r", "10000000", "-s", "200", "-I", str(seconds), "127.0.0.1", str(port)]
        log(f"== {transport}: {' '.join(command[1:])}")
        started = time.monotonic()
        result = subprocess.run(command, env=env, capture_output=True, text=True)
        output = result.stdout + result.stderr
        match = re.search(r"average rate = ([\d.]+) msg/sec, count=(\d+)", output)
        if not match:
            sys.exit(f"could not read loggen's summary:\n{output}")
        rate, sent = float(match.group(1)), int(match.group(2))
        # Until seclog has stored what loggen sent (or stops making progress).
        accepted_re = re.compile(rf'seclog_accepted_total{{listener="syslog_{transport}"}} (\d+)')
        last, stable = -1, 0
        while stable < 4:
            metrics = urllib.request.urlopen(f"http://127.0.0.1:{http}/metrics", timeout=10).read().decode()
            accepted = int(accepted_re.search(metrics).group(1)) if accepted_re.search(metrics) else 0
            if accepted >= sent:
                break
            stable = stable + 1 if accepted == last else 0
            last = accepted
            time.sleep(0.25)
        stored_after = time.monotonic() - started
    finally:
        stop(server)
    stored = stored_events(binary, data, "syslog/")
    dropped = re.search(rf'seclog_dropped_total{{listener="syslog_{transport}"}} (\d+)', metrics)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(os.path.join(data, "journal")) for f in fs)
    return {"transport": transport, "seconds": seconds, "sent": sent, "loggen_rate": rate, "stored": stored,
            "stored_after_s": stored_after, "stored_rate": stored / stored_after,
            "lost": sent - stored, "dropped_metric": int(dropped.group(1)) if dropped else None, "journal_bytes": size}


def run_bulk(work, binary, seconds, clients=4, batch=2000):
    """`_bulk` from `clients` concurrent keep-alive connections for `seconds`."""
    import http.client
    import json
    import threading

    data = os.path.join(work, "data-bulk")
    shutil.rmtree(data, ignore_errors=True)
    http_port = free_port()
    init = subprocess.run([binary, "init", "--data", data], capture_output=True, text=True, check=True)
    token = re.search(r"admin token[^:]*:\s*(\S+)", init.stdout + init.stderr).group(1)
    server = subprocess.Popen([binary, "serve", "--data", data, "--http", f"127.0.0.1:{http_port}"],
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve-bulk.log"), "w"))
    try:
        wait_healthy(http_port)
        lines = []
        for i in range(batch):
            lines.append('{"create":{"_index":"bench-bulk"}}')
            lines.append(json.dumps({"@timestamp": "2026-11-27T10:00:00Z", "host": f"web-{i % 50}", "level": "info",
                                     "message": f"GET /api/items/{i} 200 {i % 997} ms user=u{i % 300}", "n": i}))
        body = ("\n".join(lines) + "\n").encode()
        acknowledged = [0] * clients
        deadline = time.monotonic() + seconds

        def client(index):
            connection = http.client.HTTPConnection("127.0.0.1", http_port, timeout=120)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
            while time.monotonic() < deadline:
                connection.request("POST", "/_bulk", body, headers)
                reply = connection.getresponse()
                answer = json.loads(reply.read())
                if reply.status == 200 and not answer["errors"]:
                    acknowledged[index] += len(answer["items"])

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    finally:
        stop(server)
    stored = stored_events(binary, data, "bench-bulk")
    sent = sum(acknowledged)
    return {"transport": f"_bulk ({clients} clients)", "seconds": seconds, "sent": sent, "loggen_rate": sent / elapsed,
            "stored": stored, "lost": sent - stored, "stored_after_s": elapsed, "stored_rate": stored / elapsed}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--work", default="/tmp/seclog-syslog-bench")
    parser.add_argument("--transport", action="append", choices=["tcp", "tls", "bulk"])
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "seclog"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "seclog")
    results = [
        run_bulk(args.work, binary, args.seconds) if transport == "bulk" else run(args.work, binary, transport, args.seconds)
        for transport in (args.transport or ["tcp", "tls", "bulk"])
    ]
    print("\n| transport | seconds | sent (loggen; _bulk: acknowledged) | sender msg/s | stored | lost | stored msg/s (until all stored) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['transport']} | {r['seconds']} | {r['sent']:,} | {r['loggen_rate']:,.0f} | {r['stored']:,} | {r['lost']} | {r['stored_rate']:,.0f} |")


if __name__ == "__main__":
    main()
