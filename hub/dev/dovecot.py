"""A throwaway Dovecot (Debian's dovecot-imapd) on loopback, for tests and the email benchmark.

Everything lives in one folder: the configuration, a passwd-file of ``{PLAIN}`` users, maildirs
owned by the ``vmail`` system user (``scripts/ensure-services`` creates it), the log. With
``tls=True`` a self-signed certificate (made with the openssl command) serves STARTTLS on the
IMAP port and implicit TLS on a second port. Mail is delivered the way an MDA does it: written
to the maildir's ``tmp/`` and renamed into ``new/``, which IDLE reports at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

DOVECOT = "/usr/sbin/dovecot"
MAIL_USER = "vmail"


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dovecot:
    """One Dovecot instance of our own."""

    def __init__(
        self, folder: Path, users: dict[str, str], *, tls: bool = False, port: int | None = None
    ) -> None:
        self.folder = folder
        self.users = users
        self.tls = tls
        self.port = port or free_port()
        self.tls_port = free_port() if tls else None
        self._process: asyncio.subprocess.Process | None = None
        self._delivered = 0

    @classmethod
    @contextlib.asynccontextmanager
    async def throwaway(cls, users: dict[str, str], *, tls: bool = False) -> AsyncIterator[Dovecot]:
        """A running Dovecot in a new temporary folder, stopped and removed afterwards.

        The folder is readable by Dovecot's own users (pytest's and most private temporary
        folders are not); nothing secret is in it.
        """
        root = Path(tempfile.mkdtemp(prefix="hub-dovecot-"))
        os.chmod(root, 0o755)  # noqa: S103  (Dovecot's users read it)
        server = cls(root / "dovecot", users, tls=tls)
        try:
            await server.start()
            yield server
        finally:
            await server.stop()
            shutil.rmtree(root, ignore_errors=True)

    @staticmethod
    def available() -> bool:
        """Whether Dovecot and its mail user are on this machine."""
        try:
            pwd.getpwnam(MAIL_USER)
        except KeyError:
            return False
        return Path(DOVECOT).exists() and os.geteuid() == 0

    def _config(self) -> str:
        folder = self.folder
        mail = pwd.getpwnam(MAIL_USER)
        tls = (
            f"ssl = yes\nssl_cert = <{folder}/cert.pem\nssl_key = <{folder}/key.pem\n"
            if self.tls
            else "ssl = no\n"
        )
        imaps = (
            f"  inet_listener imaps {{\n    address = 127.0.0.1\n    port = {self.tls_port}\n  }}\n"
            if self.tls
            else "  inet_listener imaps {\n    port = 0\n  }\n"
        )
        return f"""# made by hub.dev.dovecot for a test: throwaway
instance_name = hub-{self.port}
base_dir = {folder}/run
state_dir = {folder}/state
log_path = {folder}/dovecot.log
protocols = imap
listen = 127.0.0.1
{tls}disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{folder}/mail/%u
mail_uid = {mail.pw_uid}
mail_gid = {mail.pw_gid}
first_valid_uid = 1
first_valid_gid = 1
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {folder}/users
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={folder}/home/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
{imaps}}}
"""

    async def start(self) -> None:
        """Write the configuration (first time) and run Dovecot in the foreground."""
        folder = self.folder
        if not (folder / "dovecot.conf").exists():
            for sub in ("run", "state", "mail", "home"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            if self.tls:
                await asyncio.to_thread(self_signed, folder)
            (folder / "users").write_text(
                "".join(f"{user}:{{PLAIN}}{password}\n" for user, password in self.users.items())
            )
            (folder / "dovecot.conf").write_text(self._config())
            mail = pwd.getpwnam(MAIL_USER)
            for sub in ("mail", "home"):
                shutil.chown(folder / sub, mail.pw_uid, mail.pw_gid)
        self._process = await asyncio.create_subprocess_exec(
            DOVECOT, "-F", "-c", str(folder / "dovecot.conf"),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: stop() ends the children too
        )  # fmt: skip
        await self._wait_for_port()

    async def _wait_for_port(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.returncode is not None:
                assert self._process.stderr is not None
                error = (await self._process.stderr.read()).decode(errors="replace")
                raise RuntimeError(f"dovecot exited: {error}{self.log()[-2000:]}")
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            await writer.wait_closed()
            return
        raise RuntimeError(f"dovecot did not listen on {self.port}: {self.log()[-2000:]}")

    async def stop(self) -> None:
        """Stop Dovecot (every connection drops)."""
        if self._process is None or self._process.returncode is not None:
            return
        # The master waits for its IMAP processes (an IDLE one waits for its client), so the
        # whole group is told: every connection drops, as when a server goes down.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(self._process.wait(), 10)
        except TimeoutError:
            os.killpg(self._process.pid, signal.SIGKILL)
            await self._process.wait()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    def log(self) -> str:
        path = self.folder / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def deliver(self, user: str, raw: bytes) -> None:
        """Deliver a message to user's INBOX as an MDA does (tmp/, then renamed into new/)."""
        root = self.folder / "mail" / user
        mail = pwd.getpwnam(MAIL_USER)
        for sub in ("tmp", "new", "cur"):
            if not (root / sub).exists():
                (root / sub).mkdir(parents=True)
                shutil.chown(root, mail.pw_uid, mail.pw_gid)
                shutil.chown(root / sub, mail.pw_uid, mail.pw_gid)
        self._delivered += 1
        name = f"{time.time_ns()}.M{self._delivered}P{os.getpid()}.hub"
        temporary = root / "tmp" / name
        temporary.write_bytes(raw)
        os.chown(temporary, mail.pw_uid, mail.pw_gid)
        temporary.rename(root / "new" / name)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and its key (openssl): cert.pem, key.pem."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(  # noqa: S603
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",  # noqa: S607
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key
