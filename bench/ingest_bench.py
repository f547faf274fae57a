#!/usr/bin/env python3
"""Durable ingest benchmark for seclog (issue: the spine).

Generates CloudTrail-shaped NDJSON from the real records in ../shared/data/cloudtrail (values
varied per event), starts a release `seclog serve` on a fresh data directory, sends it from 4
concurrent HTTP clients, then reports: events/s, MB/s, bytes on disk / raw bytes (and what
`zstd -3` alone achieves on the same data), p99 acknowledgement-to-checkpoint latency, `seclog
verify` throughput and the server's peak RSS.

Usage: python3 bench/ingest_bench.py [--total-mb 2048] [--clients 4] [--body-mb 4]
(it builds the release binary first).
"""
import argparse
import glob
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data", "cloudtrail")
BINARY = os.path.join(ROOT, "target", "release", "seclog")


def load_records():
    records = []
    for path in sorted(glob.glob(os.path.join(DATA, "**", "*.json"), recursive=True)):
        try:
            with open(path, encoding="utf-8") as handle:
                doc = json.load(handle)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("Records"), list):
            records.extend(r for r in doc["Records"] if isinstance(r, dict))
        elif isinstance(doc, list):
            records.extend(r for r in doc if isinstance(r, dict))
        elif isinstance(doc, dict) and "eventName" in doc:
            records.append(doc)
    return [r for r in records if "eventName" in r]


def pools(rng):
    """Principals and addresses as a real account has them: a few hundred, not one per event."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    ips = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(300)]
    keys = ["ASIA" + "".join(rng.choice(alphabet) for _ in range(16)) for _ in range(80)]
    return ips, keys


def vary(record, n, rng, start, ips, keys):
    """Unique ids per event (as CloudTrail has), time moving forward, principals from pools."""
    event = dict(record)
    event["eventID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    event["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + n // 50))
    event["sourceIPAddress"] = rng.choice(ips)
    if "requestID" in event:
        event["requestID"] = str(uuid.UUID(int=rng.getrandbits(128)))
    identity = event.get("userIdentity")
    if isinstance(identity, dict):
        identity = dict(identity)
        if "accessKeyId" in identity:
            identity["accessKeyId"] = rng.choice(keys)
        event["userIdentity"] = identity
    return json.dumps(event, separators=(",", ":"))


def make_bodies(records, count, body_bytes, seed):
    rng = random.Random(seed)
    ips, keys = pools(rng)
    start = 1_700_000_000
    bodies, n = [], 0
    for _ in range(count):
        lines, size = [], 0
        while size < body_bytes:
            line = vary(records[rng.randrange(len(records))], n, rng, start, ips, keys)
            lines.append(line)
            size += len(line) + 1
            n += 1
        bodies.append(("\n".join(lines) + "\n").encode())
    return bodies, n


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(port, path, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    return json.loads(response.read())


def du(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(dirpath, name))
    return total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--total-mb", type=int, default=2048)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--body-mb", type=float, default=4)
    parser.add_argument("--distinct-bodies", type=int, default=48)
    parser.add_argument("--keep", action="store_true", help="keep the data directory and print its path")
    args = parser.parse_args()
    if not os.path.isdir(DATA):
        print(f"skipped: {DATA} is absent")
        return 0
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "seclog"], cwd=ROOT, check=True)
    records = load_records()
    bodies, events_per_cycle = make_bodies(records, args.distinct_bodies, int(args.body_mb * 1e6), 42)
    events_per_body = [body.count(b"\n") for body in bodies]
    work = tempfile.mkdtemp(prefix="seclog-bench-")
    sample = os.path.join(work, "sample.ndjson")
    with open(sample, "wb") as handle:
        for body in bodies:
            handle.write(body)
    zstd_ratio = None
    if shutil.which("zstd"):
        out = subprocess.run(["zstd", "-3", "-q", "-c", sample], capture_output=True, check=True).stdout
        zstd_ratio = len(out) / os.path.getsize(sample)
    os.remove(sample)

    data_dir = os.path.join(work, "data")
    port = free_port()
    init = subprocess.run([BINARY, "init", "--data", data_dir], capture_output=True, text=True, check=True)
    token = init.stdout.split("admin token: ")[1].split()[0]
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([BINARY, "serve", "--data", data_dir, "--http", f"127.0.0.1:{port}"], stdout=log, stderr=log)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)

    total_bytes_target = args.total_mb * 1_000_000
    per_client = total_bytes_target // args.clients
    sent = [0] * args.clients
    sent_events = [0] * args.clients
    errors = []

    def client(index):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        position = index * 7
        while sent[index] < per_client:
            body_index = position % len(bodies)
            body = bodies[body_index]
            position += 1
            conn.request("POST", "/api/v1/ingest/aws/cloudtrail", body=body,
                         headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"})
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                errors.append((response.status, payload[:200]))
                return
            reply = json.loads(payload)
            if reply["accepted"] != events_per_body[body_index]:
                errors.append(("count", reply))
                return
            sent[index] += len(body)
            sent_events[index] += reply["accepted"]

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    time.sleep(1.2)  # let the last checkpoint be signed
    status = get_json(port, "/api/v1/status", token)
    with open(f"/proc/{server.pid}/status") as handle:
        peak_rss_kb = next(int(line.split()[1]) for line in handle if line.startswith("VmHWM"))
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=60)
    if errors:
        print("errors:", errors[:5])
        return 1

    raw = sum(sent)
    events = sum(sent_events)
    journal_bytes = du(os.path.join(data_dir, "journal"))
    verify_started = time.perf_counter()
    result = subprocess.run([BINARY, "verify", "--data", data_dir], capture_output=True, text=True)
    verify_elapsed = time.perf_counter() - verify_started
    if result.returncode != 0:
        print(result.stdout[-2000:], result.stderr[-2000:])
        return 1
    stats = status["stats"]
    rows = [
        ("events ingested (durable, acknowledged)", f"{events:,}"),
        ("raw NDJSON bytes", f"{raw / 1e6:,.0f} MB"),
        ("ingest throughput", f"{events / elapsed:,.0f} events/s, {raw / 1e6 / elapsed:,.1f} MB/s"),
        ("journal bytes on disk / raw", f"{journal_bytes / raw:.4f}" + (f" (zstd -3 alone: {zstd_ratio:.4f})" if zstd_ratio else "")),
        ("ack-to-checkpoint latency p50 / p99 / max", f"{stats['seal_latency_p50_ms']:.0f} / {stats['seal_latency_p99_ms']:.0f} / {stats['seal_latency_max_ms']:.0f} ms ({stats['seal_latency_samples']} acks)"),
        ("verify (whole process, keyless)", f"{journal_bytes / 1e6 / verify_elapsed:,.0f} MB/s of journal, {raw / 1e6 / verify_elapsed:,.0f} MB/s of raw events ({verify_elapsed:.2f} s)"),
        ("server peak RSS", f"{peak_rss_kb / 1024:,.0f} MiB"),
        ("group commits / checkpoints", f"{stats['commits']:,} / {stats['checkpoints']:,}"),
    ]
    print(f"seclog durable ingest: {args.clients} clients, {args.body_mb} MB bodies, {len(records)} distinct CloudTrail records varied")
    print("| measure | value |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    if args.keep:
        print(f"data directory kept: {data_dir}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
