"""`hub serve --demo` on a port of its own, as a new user runs it: every demo contact workable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub.dev.dovecot import free_port

HUB = [sys.executable, "-m", "hub.cli"]


def call(
    url: str, method: str = "GET", body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as err:
        raw, status = err.read(), err.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, list[str], dict[str, str]]]:
    """The hub with its demo, on a free port given only on the command line."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env |= {"HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"}
    env |= {"HUB_LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(  # noqa: S603
        [*HUB, "serve", "--demo", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        banner.append(line)
        if "try: curl" in line:
            break
    for _ in range(100):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                break
        except OSError:
            time.sleep(0.1)
    try:
        yield port, banner, env
    finally:
        process.terminate()
        process.wait(15)
        process.stdout.close()


def test_another_port_is_used_everywhere_and_the_demo_can_be_worked(
    served: tuple[int, list[str], dict[str, str]], tmp_path: Path
) -> None:
    port, banner, env = served
    text = "".join(banner)
    url = f"http://127.0.0.1:{port}"
    assert "8080" not in text
    assert f"public URL (what providers call): {url}" in text
    assert f"{url}/webchat/sites/demo/demo" in text

    assert call(f"{url}/favicon.ico")[0] == 200
    redirect = urllib.request.Request(f"{url}/console")  # noqa: S310
    with urllib.request.urlopen(redirect, timeout=10) as response:  # noqa: S310
        assert response.url == f"{url}/console/"

    status, login = call(
        f"{url}/api/v1/auth/login", "POST", {"username": "agent", "password": "demo-password"}
    )
    assert status == 200
    token = login["token"]
    call(f"{url}/api/v1/me/state", "POST", {"state": "available"}, token)
    status, offers = call(f"{url}/api/v1/me/offers", token=token)
    by_channel = {o["channel"]: o["interaction_id"] for o in offers["offers"]}
    assert set(by_channel) == {"sms", "api"}  # the demo's email is answered history
    sms = by_channel["sms"]
    assert call(f"{url}/api/v1/interactions/{sms}/accept", "POST", token=token)[0] == 204
    status, sent = call(f"{url}/api/v1/interactions/{sms}/reply", "POST", {"body": "Sorry!"}, token)
    assert status == 201, sent  # through the demo's own Twilio simulator
    assert sent["data"]["to"] == "+14155550100"
    web_form = by_channel["api"]
    assert call(f"{url}/api/v1/interactions/{web_form}/accept", "POST", token=token)[0] == 204
    status, closed = call(
        f"{url}/api/v1/interactions/{web_form}/close", "POST", {"disposition": "resolved"}, token
    )
    assert status == 200, closed

    # `hub dev sms` in a second terminal finds the hub from the same settings (here: the port).
    line = next(b for b in banner if "hub dev sms" in b)
    variables = dict(part.split("=", 1) for part in line.split() if part.startswith("HUB_"))
    texted = subprocess.run(  # noqa: S603
        [*HUB, "dev", "sms", "--from", "+14155550177", "--to", "+14155550000", "Hello"],
        cwd=tmp_path,
        env=env | variables,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert texted.returncode == 0, texted.stdout + texted.stderr
    assert "hub answered 200" in texted.stdout
