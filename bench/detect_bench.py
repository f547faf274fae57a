#!/usr/bin/env python3
"""Detection cost (issue 6).

1. Ingest with streaming detection on and off: N generated CloudTrail events (`seclog gen`,
   seeded, gzip objects) are imported through a running server (`seclog import --server`), once
   with `--no-detection` and once with SigmaHQ's AWS CloudTrail rules plus the built-in pack.
   Throughput is events over the time from the start of the import until every event is durable
   and, with detection on, evaluated (`/api/v1/status` reports `detection.behind == 0`).
2. Offline `seclog hunt` events/s over the same kind of events written as NDJSON: with every
   loadable SigmaHQ rule (NDJSON is read by every rule, whatever its log source), and as
   CloudTrail (only the rules routed to CloudTrail).

Usage: python3 bench/detect_bench.py [--events 1000000] [--hunt-events 100000] [--repeat 3]
(builds the release binary first; needs ../shared/data/sigma).
"""
import argparse
import glob
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "seclog")
SIGMA = os.path.join(os.path.dirname(ROOT), "shared", "data", "sigma")


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def status(url, token):
    request = urllib.request.Request(url + "/api/v1/status",
                                     headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(request, timeout=30) as reply:
        return json.load(reply)


def ingest(objects, events, detection_args):
    data = tempfile.mkdtemp(prefix="seclog-detect-bench-")
    try:
        out = run([BINARY, "init", "--data", data])
        token = next(line.removeprefix("admin token: ").strip()
                     for line in out.stdout.splitlines() if line.startswith("admin token: "))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([BINARY, "serve", "--data", data, "--http", f"127.0.0.1:{port}",
                                   *detection_args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(url + "/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            started = time.monotonic()
            run([BINARY, "import", "--server", url, "--quiet", objects],
                env=dict(os.environ, SECLOG_TOKEN=token))
            stored = time.monotonic() - started
            evaluated = None
            if "--no-detection" not in detection_args:
                while True:
                    detection = status(url, token)["detection"]
                    if detection["behind"] == 0 and detection["events"] >= events:
                        break
                    time.sleep(0.05)
                evaluated = time.monotonic() - started
                findings = detection["findings"]
            else:
                findings = 0
            return stored, evaluated, findings
        finally:
            server.terminate()
            server.wait(timeout=600)
    finally:
        shutil.rmtree(data, ignore_errors=True)


def hunt(rules, path, fmt):
    args = [BINARY, "hunt", "--format", fmt, "--input", path, "--output-file", os.devnull]
    for directory in rules:
        args += ["--rules", directory]
    started = time.monotonic()
    out = run(args)
    elapsed = time.monotonic() - started
    summary = next(line for line in out.stderr.splitlines() if " events, " in line)
    loaded = next(line for line in out.stderr.splitlines() if "rules loaded" in line)
    return elapsed, summary, loaded


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--hunt-events", type=int, default=100_000)
    parser.add_argument("--skip-hunt", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the ingest runs (the table shows medians)")
    args = parser.parse_args()
    if not os.path.isdir(SIGMA):
        sys.exit(f"{SIGMA} is absent")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "seclog"], cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="seclog-detect-bench-input-")
    try:
        objects = os.path.join(work, "objects")
        run([BINARY, "gen", "--format", "cloudtrail", "--events", str(args.events),
             "--per-file", "10000", "--seed", "6", "--output", objects])
        aws_rules = os.path.join(SIGMA, "rules", "cloud", "aws", "cloudtrail")
        if not args.skip_ingest:
            ingest_table(args, objects, aws_rules, work)
        if args.skip_hunt:
            return
        hunt_table(args, objects)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ingest_table(args, objects, aws_rules, work):
    # aws_sts_assumerole_misuse matches every AssumedRole session of a role (a third of these
    # events): the same run without it shows what storing that many findings costs.
    quiet_rules = os.path.join(work, "aws-rules")
    shutil.copytree(aws_rules, quiet_rules)
    os.remove(os.path.join(quiet_rules, "aws_sts_assumerole_misuse.yml"))
    setups = [
        ("off", "—", ["--no-detection"]),
        ("on", "57 SigmaHQ AWS + built-in pack + rate anomalies", ["--rules", aws_rules]),
        ("on", "the same without aws_sts_assumerole_misuse", ["--rules", quiet_rules]),
    ]
    # Rounds alternate the setups, so that a slow spell of the machine hits all of them.
    results = [[] for _ in setups]
    for round_number in range(args.repeat):
        for index, (_, _, detection_args) in enumerate(setups):
            stored, evaluated, findings = ingest(objects, args.events, detection_args)
            results[index].append((evaluated or stored, stored, findings))
            print(f"round {round_number + 1}: {setups[index][1]}: stored {stored:.1f} s, "
                  f"evaluated {evaluated or stored:.1f} s", file=sys.stderr)
    print(f"ingest of {args.events:,} generated CloudTrail events through a server (2 cores), "
          f"median of {args.repeat} rounds")
    print("| detection | rules | stored s | evaluated s | events/s | findings | loss |")
    print("|---|---|---|---|---|---|---|")
    off_s = median([total for total, _, _ in results[0]])
    for (state, rules, _), runs in zip(setups, results):
        total = median([total for total, _, _ in runs])
        stored = median([stored for _, stored, _ in runs])
        findings = max(found for _, _, found in runs)
        loss = "—" if state == "off" else f"{100 * (1 - off_s / total):.1f} %"
        evaluated = "—" if state == "off" else f"{total:.1f}"
        found = "—" if state == "off" else f"{findings:,}"
        print(f"| {state} | {rules} | {stored:.1f} | {evaluated} | {args.events / total:,.0f} | "
              f"{found} | {loss} |")
    spread = [f"{100 * (1 - off[0] / on[0]):.1f}" for off, on in zip(results[0], results[1])]
    print(f"loss per round (all 57 rules): {', '.join(spread)} %")


def median(values):
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def hunt_table(args, objects):
    work = os.path.dirname(objects)
    # Offline hunt over NDJSON CloudTrail records.
    ndjson = os.path.join(work, "cloudtrail.ndjson")
    written = 0
    with open(ndjson, "w") as out:
        for path in sorted(glob.glob(os.path.join(objects, "**", "*.json.gz"), recursive=True)):
            with gzip.open(path, "rt") as source:
                for record in json.load(source)["Records"]:
                    out.write(json.dumps(record) + "\n")
                    written += 1
                    if written >= args.hunt_events:
                        break
            if written >= args.hunt_events:
                break
    everything = [os.path.join(SIGMA, d) for d in
                  ("rules", "rules-emerging-threats", "rules-threat-hunting")]
    print()
    print(f"offline hunt over {written:,} CloudTrail records")
    print("| input | rules evaluated per event | s | events/s |")
    print("|---|---|---|---|")
    for label, fmt in (("NDJSON (every rule)", "ndjson"), ("CloudTrail (routed)", "cloudtrail")):
        elapsed, summary, loaded = hunt(everything, ndjson, fmt)
        rate = written / elapsed
        total = loaded.split(" rules loaded")[0]
        routed = loaded.split("(")[1].split(" compiled")[0]
        evaluated = (f"all {total}" if fmt == "ndjson"
                     else f"those routed to CloudTrail ({routed} compiled for all sources)")
        print(f"| {label} | {evaluated} | {elapsed:.1f} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
