#!/usr/bin/python3
"""load_http.py - load generator for `cllm serve` (or any OpenAI-compatible server): N streamed
completion requests of P pseudo-random prompt token ids (deterministic, distinct per request,
like `cllm bench --serve`), G output tokens each (ignore_eos, greedy), at most C in flight.
Reports output tokens/s, requests/s, TTFT (send -> first streamed token) and end-to-end latency
mean/p50/p95/p99 in ms, and TPOT.

usage: load_http.py --url http://127.0.0.1:8080 [--requests 64] [--prompt-len 128]
                    [--gen-len 128] [--concurrency 8] [--api-key KEY] [--vocab 151000]
                    [--model NAME] [--json]
Python 3 standard library only.
"""
import argparse
import http.client
import json
import random
import sys
import threading
import time
import urllib.parse


def percentile(v, p):
    """Linear interpolation between closest ranks (numpy's default); v sorted."""
    if not v:
        return 0.0
    r = p / 100 * (len(v) - 1)
    lo = int(r)
    return v[-1] if lo >= len(v) - 1 else v[lo] + (r - lo) * (v[lo + 1] - v[lo])


def one_request(url, headers, body):
    """Stream one completion; (ttft s, e2e s, completion tokens)."""
    u = urllib.parse.urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=3600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body=body, headers=headers)
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:300]!r}")
    ttft, n, buf = None, None, b""
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        data = line[6:]
        if data == b"[DONE]":
            break
        j = json.loads(data)
        if j.get("choices") and ttft is None:
            ttft = time.perf_counter() - t0
        if j.get("usage"):
            n = j["usage"]["completion_tokens"]
        buf = data
    e2e = time.perf_counter() - t0
    c.close()
    if n is None:
        raise RuntimeError(f"no usage chunk (last: {buf[:200]!r})")
    return ttft if ttft is not None else e2e, e2e, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--gen-len", type=int, default=128)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--model", default=None)
    ap.add_argument("--vocab", type=int, default=151000, help="prompt ids are drawn below this")
    ap.add_argument("--json", action="store_true", help="print one JSON line with the results")
    a = ap.parse_args()

    rnd = random.Random(1234)
    headers = {"Content-Type": "application/json"}
    if a.api_key:
        headers["Authorization"] = "Bearer " + a.api_key
    bodies = []
    for _ in range(a.requests):
        req = {"prompt": [rnd.randrange(100, a.vocab) for _ in range(a.prompt_len)],
               "max_tokens": a.gen_len, "temperature": 0, "ignore_eos": True, "stream": True,
               "stream_options": {"include_usage": True}}
        if a.model:
            req["model"] = a.model
        bodies.append(json.dumps(req).encode())

    results, errors, lock = [], [], threading.Lock()
    pending = list(range(a.requests))

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                i = pending.pop(0)
            try:
                res = one_request(a.url, headers, bodies[i])
                with lock:
                    results.append(res)
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(repr(e))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        print(f"{len(errors)} requests failed, e.g. {errors[0]}", file=sys.stderr)
    ttft = sorted(r[0] for r in results)
    e2e = sorted(r[1] for r in results)
    tpot = sorted((r[1] - r[0]) / (r[2] - 1) for r in results if r[2] > 1)
    tokens = sum(r[2] for r in results)
    out = {"requests": len(results), "concurrency": a.concurrency, "wall_s": wall,
           "output_tok_s": tokens / wall, "req_s": len(results) / wall}
    for name, v in (("ttft", ttft), ("e2e", e2e), ("tpot", tpot)):
        out[name] = {k: (sum(v) / len(v) if k == "mean" else percentile(v, p)) * 1e3 if v else 0.0
                     for k, p in (("mean", 0), ("p50", 50), ("p95", 95), ("p99", 99))}
    if a.json:
        print(json.dumps(out))
    else:
        print(f"requests {out['requests']} (failed {len(errors)}), concurrency {a.concurrency}, "
              f"wall {wall:.2f} s")
        print(f"output tokens/s          {out['output_tok_s']:.2f}")
        print(f"requests/s               {out['req_s']:.3f}")
        for name in ("ttft", "tpot", "e2e"):
            d = out[name]
            print(f"{name + ' ms':<24} mean {d['mean']:.2f}  p50 {d['p50']:.2f}  p95 {d['p95']:.2f}  "
                  f"p99 {d['p99']:.2f}")
    sys.exit(1 if errors else 0)


main()
