"""A throwaway Dovecot IMAP server for tests, from the distribution's binaries.

`.ci/run` installs Debian's `dovecot-imapd` package; this writes a private configuration in a
temporary directory (plaintext logins, no TLS, a passwd-file of users, Maildir mail) listening on a
free loopback port, starts Dovecot with it and removes everything on stop. As root, mail is owned
by the `mail` user (Dovecot refuses to deliver as uid 0); otherwise everything runs as the caller
(so no chroots either: a test server needs none).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from seamline.devtools.postgres import _free_port


def find_dovecot() -> Path | None:
    for candidate in ("/usr/sbin/dovecot", shutil.which("dovecot")):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, left where nothing reaps the daemon, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


class DovecotServer:
    host = "127.0.0.1"

    def __init__(self, *, binary: Path | None = None):
        self.binary = binary or find_dovecot()
        if self.binary is None:
            raise RuntimeError("Dovecot not found (install Debian's 'dovecot-imapd' package)")
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="seamline-dovecot-"))
        self.config = self.root / "dovecot.conf"
        self.passwd = self.root / "passwd"
        self.log = self.root / "dovecot.log"
        self.run_dir = self.root / "run"

    @property
    def url(self) -> str:
        return f"imap://{self.host}:{self.port}"

    def add_user(self, name: str, password: str) -> None:
        """Add a login; works while running.

        Dovecot rereads a changed passwd-file, but checks it at most once per second: when running,
        wait for the next second so that the next login sees the new user.
        """
        if any(c in name + password for c in ":\n\r"):
            raise ValueError("user names and passwords may not contain ':' or line breaks")
        with self.passwd.open("a") as f:
            f.write(f"{name}:{{PLAIN}}{password}\n")
        if self._pid() is not None:
            time.sleep(1.01 - time.time() % 1)

    def _write_config(self) -> None:
        mail_dir = self.root / "mail"
        mail_dir.mkdir()
        self.passwd.touch()
        if os.geteuid() == 0:
            # Unprivileged Dovecot processes must reach the mail and the sockets under root.
            self.root.chmod(0o755)
            shutil.chown(mail_dir, "mail", "mail")
            mail_user, mail_group, internal_user, internal_group, login_user = "mail", "mail", "dovecot", "dovecot", "dovenull"
        else:
            mail_user = internal_user = login_user = pwd.getpwuid(os.geteuid()).pw_name
            mail_group = internal_group = grp.getgrgid(os.getegid()).gr_name
        self.config.write_text(f"""\
protocols = imap
listen = {self.host}
base_dir = {self.run_dir}
state_dir = {self.root / "state"}
log_path = {self.log}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
default_internal_user = {internal_user}
default_internal_group = {internal_group}
default_login_user = {login_user}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_group} home={mail_dir}/%u
}}
service anvil {{
  chroot =
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
""")

    def start(self) -> "DovecotServer":
        self._write_config()
        # The daemon keeps inherited descriptors open: send its output to a file, not a pipe.
        with (self.root / "start.out").open("w+") as out:
            code = subprocess.run([str(self.binary), "-c", str(self.config)], stdout=out, stderr=out, check=False).returncode
            out.seek(0)
            if code != 0:
                self._fail(f"dovecot exited with {code}: {out.read().strip()}")
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self._fail(f"Dovecot did not accept IMAP connections on {self.host}:{self.port} within 10 s")
            time.sleep(0.1)

    def _fail(self, message: str) -> None:
        try:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            tail = "(no log)"
        self.stop()
        raise RuntimeError(f"{message}\n--- dovecot log tail ---\n{tail}")

    def _pid(self) -> int | None:
        try:
            return int((self.run_dir / "master.pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        pid = self._pid()
        if pid is not None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if not _alive(pid):
                    break
                os.kill(pid, sig)
                deadline = time.monotonic() + 5
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
        shutil.rmtree(self.root, ignore_errors=True)
