#!/usr/bin/env python3
"""Import throughput of service log objects (issue 5), in MB/s of gzip input.

Generates CloudTrail and VPC Flow Logs objects with `seclog gen` (seeded, AWSLogs layout,
gzip), then imports each set into a fresh, stopped data directory with `seclog import --data`:
from the local directory, and from moto_server S3 (objects uploaded with boto3 first; the
upload is not timed). For context it also times `gzip -dc` over the same objects (the
decompression floor) and `aws s3 sync`-free download through boto3 (what fetching alone costs
from moto). An import is timed until every record is durable (fsync) in the journal; indexing
catches up afterwards, in the server.

Usage: python3 bench/import_bench.py [--cloudtrail 200000] [--vpcflow 2000000]
(builds the release binary first).
"""
import argparse
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BINARY = os.path.join(ROOT, "target", "release", "seclog")
ENV = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
           AWS_REGION="us-east-1")


def run(args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def files_under(path):
    return sorted(p for p in glob.glob(os.path.join(path, "**", "*.gz"), recursive=True))


def sizes(files):
    gz = sum(os.path.getsize(p) for p in files)
    raw = 0
    for p in files:
        raw += len(subprocess.run(["gzip", "-dc", p], check=True, capture_output=True).stdout)
    return gz, raw


def timed_import(source, extra=()):
    data = tempfile.mkdtemp(prefix="seclog-import-bench-")
    try:
        run([BINARY, "init", "--data", data])
        started = time.monotonic()
        out = run([BINARY, "import", "--data", data, "--quiet", *extra, source], env=ENV)
        elapsed = time.monotonic() - started
        return elapsed, out.stdout.strip()
    finally:
        shutil.rmtree(data, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cloudtrail", type=int, default=200_000)
    parser.add_argument("--vpcflow", type=int, default=2_000_000)
    args = parser.parse_args()
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "seclog"], cwd=ROOT, check=True)
    import boto3  # noqa: E402  (installed by scripts/test)

    work = tempfile.mkdtemp(prefix="seclog-import-data-")
    port = free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    rows = []
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        for fmt, events, per_file in (("cloudtrail", args.cloudtrail, 2_000),
                                      ("vpcflow", args.vpcflow, 50_000)):
            out = os.path.join(work, fmt)
            run([BINARY, "gen", "--format", fmt, "--events", str(events), "--seed", "5",
                 "--per-file", str(per_file), "--output", out])
            files = files_under(out)
            gz, raw = sizes(files)
            started = time.monotonic()
            for p in files:
                subprocess.run(["gzip", "-dc", p], check=True, stdout=subprocess.DEVNULL)
            gunzip = time.monotonic() - started
            local, summary = timed_import(out)
            bucket = f"bench-{fmt}"
            s3.create_bucket(Bucket=bucket)
            for p in files:
                s3.upload_file(p, bucket, os.path.relpath(p, out))
            started = time.monotonic()
            for p in files:
                s3.get_object(Bucket=bucket, Key=os.path.relpath(p, out))["Body"].read()
            fetch = time.monotonic() - started
            remote, remote_summary = timed_import(f"s3://{bucket}/AWSLogs/", ("--s3-endpoint", endpoint))
            rows.append((fmt, events, len(files), gz, raw, local, remote, gunzip, fetch))
            print(summary, file=sys.stderr)
            print(remote_summary, file=sys.stderr)
    finally:
        moto.terminate()
        moto.wait()
        shutil.rmtree(work, ignore_errors=True)

    print("| data | records | objects | gzip MB | raw MB | import local: s | MB/s gz | records/s | import moto S3: s | MB/s gz | `gzip -dc` alone: s | boto3 GET alone: s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for fmt, events, count, gz, raw, local, remote, gunzip, fetch in rows:
        print(f"| {fmt} | {events:,} | {count} | {gz / 1e6:.1f} | {raw / 1e6:.1f} | {local:.1f} | "
              f"{gz / 1e6 / local:.1f} | {events / local:,.0f} | {remote:.1f} | {gz / 1e6 / remote:.1f} | "
              f"{gunzip:.1f} | {fetch:.1f} |")


if __name__ == "__main__":
    main()
