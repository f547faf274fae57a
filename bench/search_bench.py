#!/usr/bin/env python3
"""Search benchmark: seclog against ripgrep, SQLite FTS5 and chDB on one generated data set.

One command, one machine, one data set:

    python3 bench/search_bench.py                 # 10 M events (about 12 GB of NDJSON)
    python3 bench/search_bench.py --events 200000 # a quick run

The data set is CloudTrail-shaped: every event is a real record from
../shared/data/cloudtrail/invictus with varied values (event and request ids, times over 30
days, 5,000 access keys, 2,000 users, 50,000 source addresses, 8 regions). One access key (the
needle) appears in exactly 12 events.

Measured for each engine:
  ingest   raw NDJSON bytes / seconds until every event is searchable
  disk     bytes the engine keeps / raw bytes (seclog: journal + index)
  needle   p50 of 20 runs: the events of one access key id
  stats    `filter eventSource = "ec2.amazonaws.com" | stats count() by eventName`, p50 of 5
  bin      `stats count() by bin(1h)`, p50 of 5

seclog's size and queries are measured once its index has settled (no background merge has
changed the index directory for 10 s); the time to that point is reported as settled_s.
seclog is measured through its HTTP API (each query is also written to seclog/access), so its
times include HTTP and the access-log commit. Peers get their best plain form: ripgrep scans
the raw file; SQLite keeps the raw event in an FTS5 table plus extracted columns; chDB keeps
the raw event plus extracted columns in a MergeTree ordered by time with a bloom filter on the
access key. seclog indexes every field of every event; the peers only the few the queries use.

Needs: cargo (builds seclog in release), ripgrep (apt), chdb (pip). Missing peers are reported
as skipped. Results go to stdout as a Markdown table and to WORK/results.json.
"""

import argparse
import concurrent.futures
import copy
import glob
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DATA = os.path.join(ROOT, "..", "shared", "data", "cloudtrail", "invictus")

NEEDLE_COUNT = 12
REGIONS = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-1", "ap-northeast-1"]
START = 1_714_521_600  # 2024-05-01T00:00:00Z
SPAN = 30 * 86_400


# Bumped whenever the generated data changes (the work directory's copy is then regenerated).
GENERATOR = 2


def log(message):
    print(message, file=sys.stderr, flush=True)


def hexid(rng, n):
    return "%0*x" % (n, rng.getrandbits(4 * n))


def uuid(rng):
    h = hexid(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def akid(rng):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    return "AKIA" + "".join(rng.choice(alphabet) for _ in range(16))


def generate(path, events, seed=7):
    templates = []
    for name in sorted(glob.glob(os.path.join(DATA, "*.json"))):
        with open(name) as handle:
            templates.extend(json.load(handle)["Records"])
    if not templates:
        sys.exit(f"no CloudTrail files under {DATA}")
    rng = random.Random(seed)
    keys = [akid(rng) for _ in range(5000)]
    needle = akid(rng)
    users = [f"user-{i:04d}" for i in range(2000)]
    # A principal id belongs to an identity (as in CloudTrail), not to one call.
    principals = {user: "AIDA" + hexid(rng, 16).upper() for user in users}
    ips = [f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}" for _ in range(50_000)]
    needle_at = set(rng.sample(range(events), NEEDLE_COUNT))
    raw = 0
    with open(path, "w") as out:
        for i in range(events):
            event = copy.deepcopy(templates[rng.randrange(len(templates))])
            second = START + (i * SPAN) // events
            event["eventTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
            event["eventID"] = uuid(rng)
            event["requestID"] = uuid(rng)
            event["awsRegion"] = REGIONS[rng.randrange(len(REGIONS))]
            event["sourceIPAddress"] = ips[int(rng.paretovariate(1.2)) % len(ips)]
            identity = event.get("userIdentity")
            if isinstance(identity, dict):
                user = users[int(rng.paretovariate(1.1)) % len(users)]
                identity["accessKeyId"] = needle if i in needle_at else keys[int(rng.paretovariate(1.05)) % len(keys)]
                identity["principalId"] = principals[user]
                if "userName" in identity:
                    identity["userName"] = user
                if "arn" in identity and ":user/" in identity["arn"]:
                    identity["arn"] = identity["arn"].split(":user/")[0] + ":user/" + user
            elif i in needle_at:
                event["userIdentity"] = {"type": "IAMUser", "accessKeyId": needle}
            line = json.dumps(event, separators=(",", ":"))
            raw += len(line) + 1
            out.write(line)
            out.write("\n")
            if i and i % 1_000_000 == 0:
                log(f"  generated {i} events")
    return needle, raw


def dir_listing(path):
    """(file, size) of every file under path; files removed while walking are left out."""
    listing = []
    for base, _, files in os.walk(path):
        for name in files:
            try:
                listing.append((os.path.join(base, name), os.path.getsize(os.path.join(base, name))))
            except OSError:
                pass
    return sorted(listing)


def dir_bytes(path):
    total = 0
    for base, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(base, name))
            except OSError:
                pass
    return total


def p50(samples):
    return statistics.median(samples)


def timed(fn, runs):
    samples = []
    result = None
    started = time.perf_counter()
    fn()  # warm
    if time.perf_counter() - started > 2.0:
        runs = min(runs, 3)
    for _ in range(runs):
        started = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - started)
    return p50(samples), result


# ---------------------------------------------------------------- seclog


class Seclog:
    name = "seclog"

    def __init__(self, work, binary, raw_path, raw_bytes, needle):
        self.work = work
        self.binary = binary
        self.raw_path = raw_path
        self.raw_bytes = raw_bytes
        self.needle = needle
        self.data = os.path.join(work, "seclog-data")
        self.process = None
        self.base = "http://127.0.0.1:18971"

    def call(self, path, body, timeout=600):
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if not isinstance(body, bytes) else body,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return json.loads(reply.read())

    def call_kept(self, path, body, timeout=600):
        # One kept-alive connection for queries, as an application or a dashboard holds one.
        import http.client

        if getattr(self, "connection", None) is None:
            self.connection = http.client.HTTPConnection("127.0.0.1", int(self.base.rsplit(":", 1)[1]), timeout=timeout)
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        try:
            self.connection.request("POST", path, data, {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})
            reply = self.connection.getresponse()
            payload = reply.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = None
            raise
        if reply.status != 200:
            raise RuntimeError(f"{path}: HTTP {reply.status}: {payload[:300]!r}")
        return json.loads(payload)

    def query(self, text):
        return self.call_kept("/api/v1/query", {"query": text, "start": "2024-01-01T00:00:00Z", "end": "2025-01-01T00:00:00Z", "groups": ["aws/cloudtrail"]})

    def ingest(self, events):
        shutil.rmtree(self.data, ignore_errors=True)
        out = subprocess.run([self.binary, "init", "--data", self.data], capture_output=True, text=True, check=True)
        self.token = out.stdout.split("admin token:")[1].strip()
        self.log = open(os.path.join(self.work, "seclog-serve.log"), "w")
        self.process = subprocess.Popen(
            [self.binary, "serve", "--data", self.data, "--http", self.base[len("http://"):]],
            stdout=self.log, stderr=self.log,
        )
        for _ in range(200):
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.05)
        started = time.perf_counter()

        def chunks():
            with open(self.raw_path, "rb") as handle:
                while True:
                    block = handle.read(8 << 20)
                    if not block:
                        return
                    rest = handle.readline()
                    yield block + rest

        def send(body):
            return self.call("/api/v1/ingest/aws/cloudtrail", body)["accepted"]

        accepted = 0
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            for count in pool.map(send, chunks()):
                accepted += count
        acked = time.perf_counter() - started
        while True:
            request = urllib.request.Request(self.base + "/api/v1/status", headers={"Authorization": f"Bearer {self.token}"})
            with urllib.request.urlopen(request, timeout=60) as reply:
                indexed = json.loads(reply.read())["index"]["indexed"]
            if indexed >= events:
                break
            time.sleep(0.25)
        assert self.query("stats count(*) as n")["rows"][0]["n"] == events
        searchable = time.perf_counter() - started
        assert accepted == events, (accepted, events)
        # The index keeps merging its segments in the background for a while (chDB's figure
        # includes its OPTIMIZE FINAL): size and queries are measured once the index directory
        # has not changed for 10 s.
        index_dir = os.path.join(self.data, "index")
        last, steady_since = None, time.perf_counter()
        while time.perf_counter() - steady_since < 10:
            time.sleep(1)
            now = dir_listing(index_dir)
            if now != last:
                last, steady_since = now, time.perf_counter()
        settled = steady_since - started
        journal = dir_bytes(os.path.join(self.data, "journal"))
        index = dir_bytes(index_dir)
        return {
            "ingest_s": searchable,
            "acked_s": acked,
            "settled_s": settled,
            "disk_bytes": journal + index,
            "journal_bytes": journal,
            "index_bytes": index,
        }

    def needle_query(self):
        return len(self.query(f'filter userIdentity.accessKeyId = "{self.needle}" | fields eventTime, eventName, sourceIPAddress')["rows"])

    def stats_query(self):
        return self.query('filter eventSource = "ec2.amazonaws.com" | stats count() by eventName')["rows"]

    def bin_query(self):
        return len(self.query("stats count() by bin(1h)")["rows"])

    def close(self):
        if self.process:
            self.process.terminate()
            self.process.wait(timeout=120)


# ---------------------------------------------------------------- ripgrep


class Ripgrep:
    name = "ripgrep"

    def __init__(self, work, raw_path, needle):
        self.raw_path = raw_path
        self.needle = needle

    def ingest(self, events):
        return {"ingest_s": None, "disk_bytes": os.path.getsize(self.raw_path)}

    def needle_query(self):
        out = subprocess.run(["rg", "-F", "-c", self.needle, self.raw_path], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)

    def stats_query(self):
        script = f"rg -F '\"eventSource\":\"ec2.amazonaws.com\"' {self.raw_path} | rg -o '\"eventName\":\"[^\"]+\"' | sort | uniq -c"
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout.count("\n")

    def bin_query(self):
        script = f"rg -o '\"eventTime\":\"[0-9T:-]{{13}}' {self.raw_path} | sort | uniq -c"
        return subprocess.run(["sh", "-c", script], capture_output=True, text=True).stdout.count("\n")

    def close(self):
        pass


# ---------------------------------------------------------------- SQLite FTS5


class Sqlite:
    name = "SQLite FTS5"

    def __init__(self, work, raw_path, needle):
        self.path = os.path.join(work, "sqlite.db")
        self.raw_path = raw_path
        self.needle = needle

    def ingest(self, events):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.remove(self.path + suffix)
        started = time.perf_counter()
        db = sqlite3.connect(self.path)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE events(id INTEGER PRIMARY KEY, event_time TEXT, event_source TEXT, event_name TEXT, access_key TEXT, raw TEXT)")
        db.execute("CREATE VIRTUAL TABLE events_fts USING fts5(raw, content='events', content_rowid='id')")

        def rows():
            with open(self.raw_path) as handle:
                for line in handle:
                    event = json.loads(line)
                    identity = event.get("userIdentity") or {}
                    yield (event.get("eventTime"), event.get("eventSource"), event.get("eventName"), identity.get("accessKeyId"), line)

        batch = []
        for row in rows():
            batch.append(row)
            if len(batch) == 50_000:
                db.executemany("INSERT INTO events(event_time, event_source, event_name, access_key, raw) VALUES (?,?,?,?,?)", batch)
                db.commit()
                batch = []
        if batch:
            db.executemany("INSERT INTO events(event_time, event_source, event_name, access_key, raw) VALUES (?,?,?,?,?)", batch)
        db.execute("INSERT INTO events_fts(rowid, raw) SELECT id, raw FROM events")
        db.commit()
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
        elapsed = time.perf_counter() - started
        self.db = sqlite3.connect(self.path)
        return {"ingest_s": elapsed, "disk_bytes": os.path.getsize(self.path)}

    def needle_query(self):
        return len(self.db.execute("SELECT e.event_time, e.event_name FROM events_fts f JOIN events e ON e.id = f.rowid WHERE events_fts MATCH ?", (f'"{self.needle}"',)).fetchall())

    def stats_query(self):
        return self.db.execute("SELECT event_name, count(*) FROM events WHERE event_source = 'ec2.amazonaws.com' GROUP BY event_name").fetchall()

    def bin_query(self):
        return len(self.db.execute("SELECT substr(event_time, 1, 13), count(*) FROM events GROUP BY 1").fetchall())

    def close(self):
        self.db.close()


# ---------------------------------------------------------------- chDB


class Chdb:
    name = "chDB MergeTree"

    def __init__(self, work, raw_path, needle):
        self.path = os.path.join(work, "chdb")
        self.raw_path = raw_path
        self.needle = needle

    def ingest(self, events):
        from chdb import session

        shutil.rmtree(self.path, ignore_errors=True)
        started = time.perf_counter()
        self.session = session.Session(self.path)
        self.session.query("CREATE DATABASE IF NOT EXISTS b")
        self.session.query(
            "CREATE TABLE b.ct (event_time DateTime, event_source LowCardinality(String), event_name LowCardinality(String), "
            "access_key String, raw String CODEC(ZSTD(3)), INDEX ak access_key TYPE bloom_filter GRANULARITY 1) "
            "ENGINE = MergeTree ORDER BY event_time"
        )
        self.session.query(
            "INSERT INTO b.ct SELECT parseDateTimeBestEffort(JSONExtractString(line, 'eventTime')), JSONExtractString(line, 'eventSource'), "
            "JSONExtractString(line, 'eventName'), JSONExtractString(line, 'userIdentity', 'accessKeyId'), line "
            f"FROM file('{self.raw_path}', 'LineAsString')"
        )
        self.session.query("OPTIMIZE TABLE b.ct FINAL")
        elapsed = time.perf_counter() - started
        return {"ingest_s": elapsed, "disk_bytes": dir_bytes(self.path)}

    def needle_query(self):
        return str(self.session.query(f"SELECT event_time, event_name FROM b.ct WHERE access_key = '{self.needle}'", "CSV")).count("\n")

    def stats_query(self):
        return str(self.session.query("SELECT event_name, count() FROM b.ct WHERE event_source = 'ec2.amazonaws.com' GROUP BY event_name", "CSV"))

    def bin_query(self):
        return str(self.session.query("SELECT toStartOfHour(event_time) h, count() FROM b.ct GROUP BY h", "CSV")).count("\n")

    def close(self):
        self.session.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--work", default="/tmp/seclog-search-bench")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--skip", action="append", default=[], help="skip an engine: seclog, ripgrep, sqlite, chdb")
    args = parser.parse_args()

    os.makedirs(args.work, exist_ok=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "seclog"], cwd=ROOT, check=True)
    binary = os.path.join(ROOT, "target", "release", "seclog")
    raw_path = os.path.join(args.work, "events.ndjson")
    meta_path = raw_path + ".meta.json"
    meta = json.load(open(meta_path)) if os.path.exists(meta_path) else {}
    if meta.get("events") != args.events or meta.get("generator") != GENERATOR:
        log(f"generating {args.events} events")
        needle, raw_bytes = generate(raw_path, args.events)
        meta = {"events": args.events, "needle": needle, "raw_bytes": raw_bytes, "generator": GENERATOR}
        json.dump(meta, open(meta_path, "w"))
    needle, raw_bytes = meta["needle"], meta["raw_bytes"]
    log(f"{args.events} events, {raw_bytes / 1e6:.0f} MB raw, needle {needle}")

    engines = []
    if "seclog" not in args.skip:
        engines.append(Seclog(args.work, binary, raw_path, raw_bytes, needle))
    if "ripgrep" not in args.skip and shutil.which("rg"):
        engines.append(Ripgrep(args.work, raw_path, needle))
    if "sqlite" not in args.skip:
        engines.append(Sqlite(args.work, raw_path, needle))
    if "chdb" not in args.skip:
        try:
            import chdb  # noqa: F401

            engines.append(Chdb(args.work, raw_path, needle))
        except ImportError:
            log("chdb is not installed (pip install chdb): skipped")

    results = []
    for engine in engines:
        log(f"== {engine.name}: ingest")
        try:
            loaded = engine.ingest(args.events)
            log(f"   {loaded}")
            needle_s, needle_rows = timed(engine.needle_query, 20)
            stats_s, stats_rows = timed(engine.stats_query, 5)
            bin_s, bin_rows = timed(engine.bin_query, 5)
            result = {
                "engine": engine.name,
                "ingest_mb_s": raw_bytes / 1e6 / loaded["ingest_s"] if loaded.get("ingest_s") else None,
                "disk_ratio": loaded["disk_bytes"] / raw_bytes,
                "needle_ms": needle_s * 1000,
                "stats_ms": stats_s * 1000,
                "bin_ms": bin_s * 1000,
                "needle_rows": needle_rows,
                **loaded,
            }
            log(f"   needle {needle_s * 1000:.1f} ms ({needle_rows}), stats {stats_s * 1000:.1f} ms, bin {bin_s * 1000:.1f} ms ({bin_rows} buckets)")
            results.append(result)
        finally:
            engine.close()

    json.dump({"events": args.events, "raw_bytes": raw_bytes, "results": results}, open(os.path.join(args.work, "results.json"), "w"), indent=2)
    print(f"\n{args.events:,} events, {raw_bytes / 1e9:.2f} GB NDJSON\n")
    print("| engine | ingest MB/s (until searchable) | on disk / raw | needle p50 ms | filter+stats by eventName p50 ms | stats by bin(1h) p50 ms |")
    print("|---|---|---|---|---|---|")
    for r in results:
        ingest = f"{r['ingest_mb_s']:.1f}" if r["ingest_mb_s"] else "n/a (no load step)"
        print(f"| {r['engine']} | {ingest} | {r['disk_ratio']:.3f} | {r['needle_ms']:.1f} | {r['stats_ms']:.1f} | {r['bin_ms']:.1f} |")
    if not args.keep:
        for name in ("seclog-data", "sqlite.db", "chdb"):
            path = os.path.join(args.work, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            elif os.path.exists(path):
                os.remove(path)


if __name__ == "__main__":
    main()
