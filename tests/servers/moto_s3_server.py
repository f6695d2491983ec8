"""A real S3-compatible HTTP server for tests: moto in server mode, on 127.0.0.1 and a free port.

Why moto's server and not its in-process mocks: the S3 backend must be tested through the network
path (HTTP, signing, headers, error responses), the way it talks to a real S3-compatible service.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

TEST_ACCESS_KEY = "mirrortwin-test"
TEST_SECRET_KEY = "mirrortwin-test-secret"
TEST_REGION = "us-east-1"


@dataclass(frozen=True)
class MotoS3Server:
    """Where a running moto S3 server listens, and how to make buckets on it."""

    endpoint_url: str
    server: ThreadedMotoServer

    def client(self) -> Any:
        """A plain boto3 client for test set-up and for looking at raw objects behind the backend."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=TEST_REGION,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        """Create a bucket with a fresh name, so tests sharing one server never see each other's objects."""
        name = f"mt-{uuid.uuid4().hex[:24]}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def running_moto_s3_server() -> Iterator[MotoS3Server]:
    """Start moto's threaded server on a free port of 127.0.0.1; stop it on exit, even after a failure."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request drowns test output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield MotoS3Server(endpoint_url=f"http://{host}:{port}", server=server)
    finally:
        server.stop()
