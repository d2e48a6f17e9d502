"""Red team for ``serve``'s supervised embedded Redis: HTTP load while its redis-server is
killed with -9 again and again, then ``serve`` itself killed with -9. Prints JSON: requests,
5xx, acknowledged puts, lost jobs (acknowledged, never delivered, not stored), restarts,
zombies, and whether the redis-server outlived ``serve``.

    .venv/bin/python -m bench.redteam_embedded [--kills 6] [--every 3]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from redisched.embedded import PIDFILE, alive_redis

REDISCHED = str(Path(sys.executable).parent / "redisched")


class Load:
    """Producers PUT unique ids, a consumer reserves and acks; everything is counted."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.counts = {"requests": 0, "5xx": 0, "503": 0, "transport_errors": 0}
        self.put: set[str] = set()  # acknowledged (200/201) puts
        self.acked: set[str] = set()  # acknowledged (204) acks
        self.delivered: set[str] = set()  # handed out by reserve (an ack may commit and
        # still answer 503 when Redis dies between the two)
        self.double_acks = 0

    def _count(self, response: httpx.Response) -> None:
        with self.lock:
            self.counts["requests"] += 1
            if response.status_code >= 500:
                self.counts["5xx"] += 1
                self.counts["503"] += response.status_code == 503

    def produce(self, name: str) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as http:
            i = 0
            while not self.stop.is_set():
                job = f"{name}-{i}"
                try:
                    response = http.put(f"/v1/topics/rt/jobs/{job}", json={"body": {"i": i}})
                except httpx.TransportError:
                    with self.lock:
                        self.counts["transport_errors"] += 1
                    continue
                self._count(response)
                if response.status_code in (200, 201):
                    with self.lock:
                        self.put.add(job)
                    i += 1

    def consume(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    response = http.post("/v1/topics/rt/reserve", json={"count": 10, "wait": 1})
                    self._count(response)
                    if response.status_code != 200:
                        continue
                    for job in response.json()["jobs"]:
                        with self.lock:
                            self.delivered.add(job["id"])
                        path = f"/v1/topics/rt/jobs/{job['id']}/ack"
                        ack = http.post(path, json={"token": job["token"]})
                        self._count(ack)
                        if ack.status_code == 204:
                            with self.lock:
                                self.double_acks += job["id"] in self.acked
                                self.acked.add(job["id"])
                except httpx.TransportError:
                    with self.lock:
                        self.counts["transport_errors"] += 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stored(url: str) -> set[str]:
    ids: set[str] = set()
    with httpx.Client(base_url=url, timeout=30) as http:
        for state in ("scheduled", "ready", "reserved", "dead"):
            cursor: str | None = None
            while True:
                params: dict[str, Any] = {"state": state, "limit": 1000}
                if cursor:
                    params["cursor"] = cursor
                page = http.get("/v1/topics/rt/jobs", params=params).json()
                ids |= {job["id"] for job in page["jobs"]}
                cursor = page.get("cursor")
                if not cursor:
                    break
    return ids


def _zombies(parent: int) -> int:
    found = 0
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        found += fields[0] == "Z" and int(fields[1]) == parent
    return found


def main() -> None:
    """Run the attack and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--every", type=float, default=3.0)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp()) / "data"
    port = _free_port()
    log = data_dir.parent / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDISCHED_")}
    with log.open("w") as out:
        serve = subprocess.Popen(
            [REDISCHED, "serve", "--port", str(port), "--data-dir", str(data_dir),
             "--appendfsync", "always"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    while True:
        try:
            if httpx.get(f"{url}/healthz").status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.1)
    load = Load(url)
    threads = [threading.Thread(target=load.produce, args=(f"p{n}",)) for n in range(2)]
    threads.append(threading.Thread(target=load.consume))
    for thread in threads:
        thread.start()
    for _ in range(args.kills):
        time.sleep(args.every)
        os.kill(int((data_dir / PIDFILE).read_text()), signal.SIGKILL)
    time.sleep(args.every)
    load.stop.set()
    for thread in threads:
        thread.join()
    stored = _stored(url)
    lost = load.put - stored - load.delivered
    alive, zombies = serve.poll() is None, _zombies(serve.pid)
    last = int((data_dir / PIDFILE).read_text())
    serve.kill()
    serve.wait()
    killed = time.monotonic()
    while alive_redis(last) and time.monotonic() - killed < 10:
        time.sleep(0.01)
    figures = {
        **load.counts, "redis_kills": args.kills, "puts_acknowledged": len(load.put),
        "acks_acknowledged": len(load.acked), "delivered": len(load.delivered),
        "double_acks": load.double_acks, "lost": len(lost),
        "acked_but_still_stored": len(load.acked & stored),
        "serve_alive_after_kills": alive, "restarts": log.read_text().count("is back on"),
        "zombies": zombies, "redis_outlived_serve": alive_redis(last),
        "redis_gone_after_serve_kill_s": round(time.monotonic() - killed, 3),
        "load_average": os.getloadavg()[0],
    }  # fmt: skip
    if alive_redis(last):
        os.kill(last, signal.SIGTERM)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
