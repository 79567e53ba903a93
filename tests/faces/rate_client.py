"""One load-generating process of test_global_rate.py (run as a script, not collected).

Sends detect calls through a Redis-shared quota from ``--start-at`` (a CLOCK_MONOTONIC
reading, comparable across processes on Linux) for ``--duration`` seconds and prints
one JSON line: the monotonic time each call was answered, and the counters.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import redis
import requests

from posterlab.config import parse_rate
from posterlab.errors import FaceApiError
from posterlab.faces.azure import AzureFaceClient
from posterlab.faces.base import usage_of
from posterlab.faces.ratelimit import RedisGcraLimiter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--quota-key", required=True)
    parser.add_argument("--rate", required=True)
    parser.add_argument("--image", type=Path, required=True)
    parser.add_argument("--start-at", type=float, required=True)
    parser.add_argument("--duration", type=float, required=True)
    args = parser.parse_args()
    data = args.image.read_bytes()
    client = redis.Redis.from_url(args.redis)
    limiter = RedisGcraLimiter(client, parse_rate(args.rate), key=args.quota_key)
    with requests.Session() as session:
        api = AzureFaceClient(args.url, key=None, provider="http", session=session,
                              limiter=limiter)
        time.sleep(max(0.0, args.start_at - time.monotonic()))
        answered: list[float] = []
        calls = throttled = errors = 0
        while time.monotonic() < args.start_at + args.duration:
            try:
                usage = api.detect(data).usage
            except FaceApiError as exc:
                usage = usage_of(exc)
                errors += 1
            answered.append(time.monotonic())
            calls += usage.api_calls
            throttled += usage.rate_limited
    print(json.dumps({"answered": answered, "api_calls": calls, "rate_limited": throttled,
                      "errors": errors}))


if __name__ == "__main__":
    main()
