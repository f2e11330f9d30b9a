"""Servers for tests of remote stores and published archives, real ones: moto's S3-compatible server and
nginx serving a folder (access log counted). Fixtures `s3_server`, `s3` and `nginx` (tests/conftest.py
makes them available to every test module)."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pntk.store import remote

# Fake, recognisable credentials: the server accepts any; tests grep written bytes for them.
KEY_ID, SECRET = "AKIAPNTKTESTKEY00042", "pntk-test-secret-do-not-write-9f3a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, what: str, log: Path | None = None, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: "
                               + (log.read_text()[-2000:] if log and log.exists() else ""))
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- servers -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3-compatible server (`moto[server]`) on a free localhost port; yields its endpoint URL."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (pip install -e '.[test]')")
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install -e '.[test]')")
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=fh, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "moto server", log)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def aws_environment(endpoint: str) -> dict[str, str | None]:
    """The standard AWS variables pointing at the moto server (None: unset), and nothing from this machine's
    own AWS files or profile."""
    return {"AWS_ENDPOINT_URL_S3": endpoint, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None, "AWS_ENDPOINT_URL": None}


@pytest.fixture
def s3(s3_server, monkeypatch, request):
    """A fresh bucket on the moto server and the AWS environment pointing at it; yields `s3://bucket`."""
    for var, value in aws_environment(s3_server).items():
        monkeypatch.delenv(var, raising=False) if value is None else monkeypatch.setenv(var, value)
    bucket = "pntk-" + request.node.name.lower().replace("_", "-")[:40].strip("-")
    fs = remote.RemotePath(f"s3://{bucket}").fs
    fs.mkdir(bucket)
    yield f"s3://{bucket}"


NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
{user}
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    default_type application/octet-stream;
    log_format counted '$request_method $uri $status $body_bytes_sent "$http_range"';
    access_log {tmp}/access.log counted;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ autoindex off; }}
    }}
}}
"""


class Nginx:
    def __init__(self, url: str, root: Path, access_log: Path):
        self.url, self.root, self.access_log = url, root, access_log

    def requests(self) -> list[tuple[str, str, int, int]]:
        """(method, uri, status, bytes sent) of every request so far."""
        out = []
        for line in self.access_log.read_text().splitlines():
            method, uri, status, sent = line.split(" ")[:4]
            out.append((method, uri, int(status), int(sent)))
        return out

    def mark(self) -> int:
        return len(self.requests())


@pytest.fixture(scope="session")
def nginx(tmp_path_factory):
    """nginx (Debian's nginx-light; `.ci/run` installs it) serving a temporary folder on a free port."""
    exe = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if exe is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run does this as root)")
    tmp = tmp_path_factory.mktemp("nginx")
    root = tmp / "www"
    root.mkdir()
    port = free_port()
    user = "user root;" if os.geteuid() == 0 else ""  # workers as root read the pytest temp folder (0700)
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    (tmp / "access.log").touch()
    proc = subprocess.Popen([exe, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "error.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, proc, "nginx", tmp / "error.log")
        yield Nginx(f"http://127.0.0.1:{port}", root, tmp / "access.log")
    finally:
        stop(proc)
