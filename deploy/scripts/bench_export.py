#!/usr/bin/env python3
"""One background job of `just bench`, timed: an export of a project's tasks, or the import of a file.

    ORDO_BENCH_TOKEN=<token> bench_export.py export --base-url URL --project-id ID --format csv|json --pid PID
    ORDO_BENCH_TOKEN=<token> bench_export.py import --base-url URL --project-id ID --file PATH --pid PID

asks for the job through the REST API, follows it (`GET /jobs/{id}` every 20 ms) until it ends, and
samples the resident memory (`VmRSS`) of the task service (`--pid`) at every look. It prints one
JSON object: the job's state, its rows, the seconds from the request to the job's end, the file's
size, and the task service's RSS before and at its peak. An export also saves its file (`--save`),
for an import to read. Standard library only.
"""

import argparse
import json
import os
import sys
import time
import urllib.request
import uuid


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def call(method, url, token, body=None, content_type=None):
    request = urllib.request.Request(url, data=body, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if content_type:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def follow(base, token, job, pid, started, before):
    """Polls the job until it ends; the job, the seconds it took and the peak RSS."""
    peak = before
    while job["state"] in ("queued", "running"):
        time.sleep(0.02)
        peak = max(peak, rss_kib(pid))
        job = call("GET", f"{base}/jobs/{job['id']}", token)
    peak = max(peak, rss_kib(pid))
    return job, time.monotonic() - started, peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=["export", "import"])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--project-id", required=True)
    parser.add_argument("--format", choices=["csv", "json"], default="csv")
    parser.add_argument("--file", help="the file to import")
    parser.add_argument("--save", help="where an export's file is saved")
    parser.add_argument("--pid", type=int, required=True, help="the task service's process")
    args = parser.parse_args()
    token = os.environ["ORDO_BENCH_TOKEN"]
    base = args.base_url.rstrip("/")

    before = rss_kib(args.pid)
    started = time.monotonic()
    if args.kind == "export":
        body = json.dumps({"format": args.format}).encode()
        job = call("POST", f"{base}/projects/{args.project_id}/exports", token, body, "application/json")
    else:
        with open(args.file, "rb") as f:
            data = f.read()
        boundary = uuid.uuid4().hex
        name = os.path.basename(args.file)
        form = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
                f"Content-Type: {'text/csv' if name.endswith('.csv') else 'application/json'}\r\n\r\n").encode()
        form += data + f"\r\n--{boundary}--\r\n".encode()
        job = call("POST", f"{base}/projects/{args.project_id}/imports", token, form,
                   f"multipart/form-data; boundary={boundary}")
    job, seconds, peak = follow(base, token, job, args.pid, started, before)
    result = {
        "kind": args.kind,
        "format": job["format"],
        "state": job["state"],
        "rows": job["progress"]["rows_done"],
        "seconds": round(seconds, 3),
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "error": job["error"],
    }
    if args.kind == "export" and job["state"] == "done":
        result["size_bytes"] = job["result"]["size_bytes"]
        if args.save:
            with urllib.request.urlopen(job["result"]["url"], timeout=60) as response, open(args.save, "wb") as f:
                f.write(response.read())
    if args.kind == "import":
        result["size_bytes"] = os.path.getsize(args.file)
        result["import_errors"] = job["import"]["error_count"]
    json.dump(result, sys.stdout)
    print()
    return 0 if job["state"] == "done" else 1


if __name__ == "__main__":
    sys.exit(main())
