"""moto's standalone S3 server, for the tests that talk S3 over real HTTP (the store's unit
tests, the staging of uploads, the production shape, the S3 outage)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port, wait_for_port


class MotoServer:
    """moto's S3 server on a port of its own, in its own process group."""

    def __init__(self, log: Path):
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = open(log, "w+b")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_for_port(self.port, self.proc, "moto server", details=self._output)
        except BaseException:
            self.stop()
            raise

    def _output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode(errors="replace")[-2000:]

    def client(self, endpoint: str | None = None):
        """A boto3 S3 client of this server (or of ``endpoint``: a relay in front of it)."""
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=endpoint or self.endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
            config=Config(s3={"addressing_style": "path"}))

    def create_bucket(self, endpoint: str, bucket: str) -> None:
        self.client(endpoint).create_bucket(Bucket=bucket)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
