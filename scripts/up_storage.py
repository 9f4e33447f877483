"""Storage steps of `make up`, run inside the cluster in a pod of the worker
image (it has the MinIO client and ffmpeg); the chart's MinIO is reachable
there by its Service name. Credentials come from the chart's storage Secret.

    python up_storage.py buckets B [B ...]      create buckets that are missing
    python up_storage.py put BUCKET KEY FILE    upload a file
    python up_storage.py clip BUCKET KEY        make a 4-second test clip and upload it
    python up_storage.py list BUCKET PREFIX     list objects, print the manifest
"""

from __future__ import annotations

import os
import subprocess
import sys

from minio import Minio


def main(argv: list[str]) -> int:
    """Run one storage step of `make up`."""
    client = Minio(
        os.environ["MEDIAFLOW_S3_ENDPOINT"],
        access_key=os.environ["MEDIAFLOW_S3_ACCESS_KEY"],
        secret_key=os.environ["MEDIAFLOW_S3_SECRET_KEY"],
        secure=False,
    )
    step, args = argv[0], argv[1:]
    if step == "buckets":
        for bucket in args:
            if not client.bucket_exists(bucket):
                client.make_bucket(bucket)
            print(f"bucket {bucket}: ready")
    elif step == "put":
        bucket, key, path = args
        client.fput_object(bucket, key, path)
        print(f"uploaded {bucket}/{key}")
    elif step == "clip":
        bucket, key = args
        clip = "/scratch/sample.mp4"
        subprocess.run(
            ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi",
             "-i", "testsrc2=size=1280x720:rate=25:duration=4",
             "-f", "lavfi", "-i", "sine=frequency=440:duration=4",
             "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", clip],
            check=True,
        )  # fmt: skip
        client.fput_object(bucket, key, clip, content_type="video/mp4")
        print(f"uploaded {bucket}/{key} ({os.path.getsize(clip)} bytes)")
    elif step == "list":
        bucket, prefix = args
        for obj in client.list_objects(bucket, prefix, recursive=True):
            print(f"  {bucket}/{obj.object_name}  {obj.size} bytes")
            if obj.object_name and obj.object_name.endswith("manifest.json"):
                manifest = client.get_object(bucket, obj.object_name).read().decode()
                print(f"--- {bucket}/{obj.object_name} ---\n{manifest}")
    else:
        print(f"unknown step {step!r}", file=sys.stderr)
        return 64
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
