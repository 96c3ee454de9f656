"""Presign + hand-over of a 100 MB input against the upload alone (issue 14's target: the
hand-over costs at most the upload time + 100 ms).

A real S3-compatible server on 127.0.0.1 (moto's standalone server, as in the tests). For each
round a fresh 100 MB file (random bytes, an MP4 header so its type is sniffed as video):
  upload    bucket.put_file alone (boto3's multipart transfer), the floor
  upload    the same through `link_for_file` (what a create does): an upload the page stored
  (page)    under uploads/<sha256>/ (its hash is the folder name), HEAD + upload + presign
  cli       a file elsewhere (`reenact submit ./take.mp4`): SHA-256 first, then the same
  again     a second create with the same file: HEAD + presign only (uploaded once)

    .venv/bin/python bench/bench_storage.py [--mb 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    import logging

    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from services.config import load_settings
    from services.publish import link_for_file, sha256_of
    from services.storage import bucket_for, content_type_of

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    env = {
        "REENACT_S3_BUCKET": "reenact-bench",
        "REENACT_S3_ENDPOINT_URL": url,
        "REENACT_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
    }
    boto3.session.Session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(s3={"addressing_style": "path"}),
    ).create_bucket(Bucket="reenact-bench")
    times: dict[str, list[float]] = {"upload": [], "page": [], "cli": [], "again": []}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"REENACT_DATA_DIR": f"{tmp}/data", **env}, secrets={})
        bucket = bucket_for(settings)
        assert bucket is not None
        for n in range(args.rounds):

            def fresh(path: Path) -> Path:
                path.parent.mkdir(parents=True, exist_ok=True)
                header = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"
                path.write_bytes(header + os.urandom(args.mb * 1024 * 1024 - len(header)))
                return path

            floor = fresh(Path(tmp) / f"floor-{n}.mp4")
            t = time.perf_counter()
            bucket.put_file(floor, f"floor/{n}.mp4", content_type_of(floor))
            times["upload"].append(time.perf_counter() - t)

            page_file = fresh(Path(tmp) / "staging" / f"page-{n}.mp4")
            stored = settings.uploads_dir / sha256_of(page_file) / page_file.name
            stored.parent.mkdir(parents=True)
            page_file.rename(stored)
            t = time.perf_counter()
            link_for_file(stored, settings)
            times["page"].append(time.perf_counter() - t)

            cli_file = fresh(Path(tmp) / f"take-{n}.mp4")
            t = time.perf_counter()
            link_for_file(cli_file, settings)
            times["cli"].append(time.perf_counter() - t)
            t = time.perf_counter()
            link_for_file(cli_file, settings)
            times["again"].append(time.perf_counter() - t)
    server.stop()
    print(f"{args.mb} MB input, {args.rounds} rounds, moto on 127.0.0.1 (median / max, ms)")
    floor_ms = statistics.median(times["upload"]) * 1000
    for name, values in times.items():
        ms = [v * 1000 for v in values]
        extra = (
            ""
            if name == "upload"
            else f"  (over the upload: {statistics.median(ms) - floor_ms:+.0f})"
        )
        print(f"  {name:7s} {statistics.median(ms):8.0f} / {max(ms):8.0f}{extra}")


if __name__ == "__main__":
    main()
