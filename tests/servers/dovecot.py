"""A real Dovecot IMAP server for tests of Palabre's inbound mail (IMAP polling).

Palabre reads replies over IMAP with aioimaplib: search UNSEEN, fetch with BODY.PEEK[], flag
\\Seen once recorded. Those commands behave differently across servers (literal handling, UID
sets, flag echoes), so the tests run them against the Dovecot packaged by Debian rather than a
mock: ``apt-get install dovecot-imapd``. A missing Dovecot is an error, never a skip, so that CI
cannot go green without having run these tests.

Each ``Dovecot`` has its own configuration, listener on 127.0.0.1 with a free port, runtime
directory and one user with a plain-text password; it runs in the foreground (``dovecot -F``)
as a child process, stopped with SIGTERM. No systemd, no system configuration is touched.

When the tests run as root, Dovecot's own processes run as the ``dovecot``/``dovenull`` users
of the package and mail is stored as the ``mail`` user, as on a real server (Dovecot refuses
uid 0 for mail). Those users cannot enter pytest's ``tmp_path`` (mode 0700), so the runtime
directory (sockets, passwd file, mailboxes) is a separate world-traversable temporary directory,
removed when the object is closed; configuration and logs stay in ``tmp_path``. When the tests
run as an ordinary user, Dovecot runs rootless as that user, all in ``tmp_path``.

Messages are put in and read back with the standard library's ``imaplib`` (``append``,
``fetch_all``, ``flags_of``): the real protocol, independent of the client under test.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import functools
import grp
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

__all__ = ["Dovecot", "DovecotNotInstalled", "FetchedMessage"]

DOVECOT_BINARY = "/usr/sbin/dovecot"
DOVECOT_IMAP = "/usr/lib/dovecot/imap"  # shipped by dovecot-imapd, not dovecot-core
INSTALL_HINT = "apt-get install dovecot-imapd"
STARTUP_TIMEOUT = 15.0

# Strong references: a running Dovecot must stay reachable for the atexit handler below.
_running: set[Dovecot] = set()
# Dovecots told to stop but not waited for (see Dovecot.close), with what to remove after.
_stopping: list[tuple[subprocess.Popen[bytes], Callable[[], object] | None]] = []


class DovecotNotInstalled(RuntimeError):
    """Dovecot is missing: the IMAP tests need it and must not be skipped."""


class FetchedMessage(NamedTuple):
    uid: int
    flags: tuple[str, ...]
    raw: bytes


class Dovecot:
    """A Dovecot IMAP server on 127.0.0.1 with one user, for one test (or a few)."""

    host = "127.0.0.1"

    def __init__(
        self,
        tmp_path: Path | str,
        *,
        user: str = "palabre",
        password: str = "s3cret-imap",
        binary: str | None = None,
    ) -> None:
        self.directory = Path(tmp_path) / "dovecot"
        self.user = user
        self.password = password
        self.binary = binary or os.environ.get("PALABRE_TEST_DOVECOT", DOVECOT_BINARY)
        self.port = 0
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._exiting: subprocess.Popen[bytes] | None = None
        self._runtime: Path | None = None
        self._cleanup: weakref.finalize | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Dovecot:
        if self._process is not None:
            raise RuntimeError("Dovecot is already running")
        if not (os.path.isfile(self.binary) and os.access(self.binary, os.X_OK)):
            raise DovecotNotInstalled(
                f"Dovecot not found at {self.binary}; the IMAP tests need a real Dovecot: "
                f"{INSTALL_HINT} (or set PALABRE_TEST_DOVECOT to the dovecot binary)"
            )
        if self.binary == DOVECOT_BINARY and not Path(DOVECOT_IMAP).exists():
            raise DovecotNotInstalled(
                f"Dovecot is installed without its IMAP service ({DOVECOT_IMAP}): {INSTALL_HINT}"
            )
        _reap(block=False)
        self.directory.mkdir(parents=True, exist_ok=True)
        runtime = self._prepare_runtime()
        started = time.monotonic()
        last_error = ""
        # The port is chosen by binding to port 0 and released before Dovecot binds it; in the
        # rare case another process takes it in between, try again with a new one.
        for _ in range(3):
            self.port = _free_port()
            config = self._write_config(runtime)
            log_offset = self._log_size()
            stderr = (self.directory / "stderr.log").open("ab")
            try:
                self._process = subprocess.Popen(
                    [self.binary, "-F", "-c", str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=stderr,
                    stderr=stderr,
                    # Its own process group: a Ctrl-C in pytest reaches pytest, which stops
                    # Dovecot in teardown, rather than killing it mid-test.
                    start_new_session=True,
                )
            finally:
                stderr.close()
            error = self._wait_until_ready(log_offset)
            if error is None:
                self.startup_seconds = time.monotonic() - started
                _running.add(self)
                return self
            last_error = error
            process, self._process = self._process, None
            if process is not None:
                _terminate(process, wait=True)
            if "Address already in use" not in error:
                break
        raise RuntimeError(f"Dovecot did not start: {last_error}")

    def stop(self, *, wait: bool = True) -> None:
        """Stop Dovecot; its mailboxes are kept, so a new ``start()`` sees the same mail.

        See ``close()`` for ``wait=False``; ``start()`` may follow either at once.
        """
        process, self._process = self._process, None
        _running.discard(self)
        if process is not None:
            _terminate(process, wait=wait)
            if not wait:
                _stopping.append((process, None))
                self._exiting = process

    def close(self, *, wait: bool = True) -> None:
        """Stop Dovecot and remove its runtime directory (mailboxes included).

        Dovecot's master always pauses one second before it exits (it gives its last child,
        the log process, time to quit). ``wait=False`` (what the fixture uses) does not sit
        through that pause: the exit is collected, and the directory removed, at the next
        ``start()`` of any Dovecot or when Python exits.
        """
        process, self._process = self._process, None
        _running.discard(self)
        if process is not None:
            _terminate(process, wait=wait)
        # Also a master still exiting after stop(wait=False).
        pending, self._exiting = process or self._exiting, None
        cleanup = None
        if self._cleanup is not None:
            detached = self._cleanup.detach()
            self._cleanup = None
            self._runtime = None
            if detached is not None:
                _, function, args, kwargs = detached
                cleanup = functools.partial(function, *args, **kwargs)
        if pending is not None and not wait:
            _stopping.append((pending, cleanup))
            return
        if pending is not None:
            _wait(pending)
        if cleanup is not None:
            cleanup()

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close(wait=False)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def log_path(self) -> Path:
        return self.directory / "dovecot.log"

    def log(self) -> str:
        """Dovecot's log, for a failing test to print."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- putting mail in and reading it back (imaplib: the real protocol) ------------------

    def connect(self) -> imaplib.IMAP4:
        """A logged-in imaplib client; close it with ``logout()``."""
        imap = imaplib.IMAP4(self.host, self.port, timeout=10)
        imap.login(self.user, self.password)
        return imap

    def append(
        self,
        raw: bytes,
        mailbox: str = "INBOX",
        flags: Iterable[str] = (),
        date: float | None = None,
    ) -> int:
        """APPEND a message (bytes as they would arrive) and return its UID.

        The mailbox is created if needed. ``date`` is the internal date (a timestamp).
        """
        flag_list = f"({' '.join(flags)})" if flags else None
        when = imaplib.Time2Internaldate(date) if date is not None else None
        with self._session() as imap:
            status, data = imap.append(_quote(mailbox), flag_list, when, raw)
            if status != "OK" and b"TRYCREATE" in (data[0] or b""):
                imap.create(_quote(mailbox))
                status, data = imap.append(_quote(mailbox), flag_list, when, raw)
            _check(status, data, "APPEND")
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            if match is None:
                raise RuntimeError(f"Dovecot gave no APPENDUID: {data!r}")
            return int(match.group(1))

    def fetch_all(self, mailbox: str = "INBOX") -> list[FetchedMessage]:
        """Every message of the mailbox as (uid, flags, raw), without changing any flag.

        ``\\Recent`` is left out of the flags: it depends on which session looked first.
        """
        with self._session() as imap:
            status, data = imap.select(_quote(mailbox), readonly=True)
            _check(status, data, "EXAMINE")
            if int(data[0] or 0) == 0:
                return []
            status, data = imap.uid("FETCH", "1:*", "(UID FLAGS BODY.PEEK[])")
            _check(status, data, "UID FETCH")
        messages = []
        for index, item in enumerate(data):
            if not isinstance(item, tuple):
                continue
            # The flags may come before or after the literal; look at both sides of it.
            after = data[index + 1] if index + 1 < len(data) else b""
            meta = item[0] + (after if isinstance(after, bytes) else b"")
            uid = re.search(rb"UID (\d+)", meta)
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta)
            if uid is None or flags is None:
                raise RuntimeError(f"unexpected FETCH response: {meta!r}")
            messages.append(
                FetchedMessage(int(uid.group(1)), _flags(flags.group(1)), bytes(item[1]))
            )
        return sorted(messages)

    def flags_of(self, uid: int, mailbox: str = "INBOX") -> tuple[str, ...]:
        """The flags of one message (``\\Recent`` left out), read without changing them."""
        with self._session() as imap:
            status, data = imap.select(_quote(mailbox), readonly=True)
            _check(status, data, "EXAMINE")
            status, data = imap.uid("FETCH", str(uid), "(FLAGS)")
            _check(status, data, "UID FETCH")
        for item in data:
            meta = item[0] if isinstance(item, tuple) else item
            if not isinstance(meta, bytes):
                continue
            found_uid = re.search(rb"UID (\d+)", meta)
            flags = re.search(rb"FLAGS \(([^)]*)\)", meta)
            if found_uid and flags and int(found_uid.group(1)) == uid:
                return _flags(flags.group(1))
        raise KeyError(f"no message with UID {uid} in {mailbox}")

    @contextlib.contextmanager
    def _session(self) -> Iterator[imaplib.IMAP4]:
        if not self.running:
            raise RuntimeError("Dovecot is not running")
        imap = self.connect()
        try:
            yield imap
        finally:
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                imap.logout()

    # -- internals -------------------------------------------------------------------------

    def _prepare_runtime(self) -> Path:
        if self._runtime is not None:
            return self._runtime
        if os.geteuid() == 0:
            # Dovecot's unprivileged processes must reach the sockets, the passwd file and the
            # mailboxes: give them a directory of their own outside pytest's 0700 tmp_path.
            runtime = Path(tempfile.mkdtemp(prefix="palabre-dovecot-"))
            runtime.chmod(0o755)
        else:
            runtime = self.directory / "runtime"
            runtime.mkdir(exist_ok=True)
        self._cleanup = weakref.finalize(self, shutil.rmtree, runtime, ignore_errors=True)
        (runtime / "home").mkdir(exist_ok=True)
        passwd = runtime / "passwd"
        passwd.write_text(f"{self.user}:{{PLAIN}}{self.password}\n")
        users = _users()
        if os.geteuid() == 0:
            mail = pwd.getpwnam(users["mail_user"])
            os.chown(runtime / "home", mail.pw_uid, mail.pw_gid)
            # Read by the auth process, which runs as the internal user.
            os.chown(passwd, 0, grp.getgrnam(users["internal_group"]).gr_gid)
            passwd.chmod(0o640)
        self._runtime = runtime
        return runtime

    def _write_config(self, runtime: Path) -> Path:
        users = _users()
        rootless = os.geteuid() != 0
        mail = pwd.getpwnam(users["mail_user"])
        # chroot needs root; a rootless Dovecot must not ask for it.
        no_chroot = "  chroot =\n" if rootless else ""
        config = f"""\
# Generated by tests/servers/dovecot.py for one test; not a production configuration.
protocols = imap
listen = {self.host}
# Per start: a restart need not wait for the previous master to finish exiting.
base_dir = {runtime / f"base-{self.port}"}
state_dir = {runtime / f"state-{self.port}"}
instance_name = palabre-test-{self.port}
log_path = {self.log_path}
info_log_path = {self.log_path}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = {users["internal_user"]}
default_internal_group = {users["internal_group"]}
default_login_user = {users["login_user"]}
first_valid_uid = {max(mail.pw_uid, 1)}
first_valid_gid = {max(mail.pw_gid, 1)}
mail_location = maildir:~/Maildir
recipient_delimiter = +
namespace inbox {{
  inbox = yes
  # "Palabre/Processed", as most servers present folders (Maildir++ stores it as ".").
  separator = /
}}
# A failed login (a test of a wrong password) answers after 0.5 s rather than 2 s.
auth_failure_delay = 0

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {runtime / "passwd"}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={runtime / "home"}/%u
}}

service imap-login {{
{no_chroot}  inet_listener imap {{
    address = {self.host}
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
{no_chroot}}}
"""
        path = self.directory / "dovecot.conf"
        path.write_text(config)
        return path

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _wait_until_ready(self, log_offset: int) -> str | None:
        """None once Dovecot greets on its port, else why it failed."""
        assert self._process is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT
        pause = 0.005
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return self._failure_text(log_offset)
            # imap-login sends its greeting only once the auth service is up, so a greeting
            # means a login will work, not just that the port is open.
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=2) as probe,
            ):
                if probe.recv(256).startswith(b"* OK"):
                    return None
            time.sleep(pause)  # a child process gives nothing to wait on but its port
            pause = min(pause * 2, 0.05)
        return f"no greeting on port {self.port} after {STARTUP_TIMEOUT}s\n" + self._failure_text(
            log_offset
        )

    def _failure_text(self, log_offset: int) -> str:
        stderr = ""
        with contextlib.suppress(FileNotFoundError):
            stderr = (self.directory / "stderr.log").read_text(errors="replace")
        try:
            with self.log_path.open("rb") as log_file:
                log_file.seek(log_offset)
                log = log_file.read().decode(errors="replace")
        except FileNotFoundError:
            log = ""
        return f"exit status {self._process and self._process.poll()}\n{log}{stderr}"


def _terminate(process: subprocess.Popen[bytes], *, wait: bool) -> None:
    if process.poll() is None:
        # SIGTERM: the master stops its services (and their clients) and exits.
        process.send_signal(signal.SIGTERM)
    if wait:
        _wait(process)


def _wait(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _reap(*, block: bool) -> None:
    """Collect Dovecots stopped with ``wait=False``, then remove what they left."""
    for entry in list(_stopping):
        process, cleanup = entry
        if block:
            _wait(process)
        if process.poll() is not None:
            _stopping.remove(entry)
            if cleanup is not None:
                cleanup()


def _users() -> dict[str, str]:
    """Accounts for Dovecot's processes: the package's users as root, ourselves otherwise."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        group = grp.getgrgid(os.getegid()).gr_name
        return {
            "internal_user": me.pw_name,
            "internal_group": group,
            "login_user": me.pw_name,
            "mail_user": me.pw_name,
        }
    users = {
        "internal_user": "dovecot",
        "internal_group": "dovecot",
        "login_user": "dovenull",
        "mail_user": "mail",
    }
    for key, name in users.items():
        try:
            if key.endswith("group"):
                grp.getgrnam(name)
            else:
                pwd.getpwnam(name)
        except KeyError as error:
            raise DovecotNotInstalled(
                f"the {name!r} account that Dovecot's package creates is missing: {INSTALL_HINT}"
            ) from error
    return users


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _quote(mailbox: str) -> str:
    encoded = _modified_utf7(mailbox)
    return '"' + encoded.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _modified_utf7(name: str) -> str:
    """IMAP's mailbox name encoding (RFC 3501, 5.1.3): "Traités" is "Trait&AOk-s"."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            data = base64.b64encode("".join(pending).encode("utf-16-be")).decode()
            out.append("&" + data.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for char in name:
        if 0x20 <= ord(char) <= 0x7E:
            flush()
            out.append("&-" if char == "&" else char)
        else:
            pending.append(char)
    flush()
    return "".join(out)


def _flags(raw: bytes) -> tuple[str, ...]:
    return tuple(flag for flag in raw.decode().split() if flag != "\\Recent")


def _check(status: str, data: list, command: str) -> None:
    if status != "OK":
        raise RuntimeError(f"IMAP {command} failed: {status} {data!r}")


@atexit.register
def _stop_leftovers() -> None:
    # A test run that dies before teardown must not leave Dovecot listening; stop them all
    # first so that their one-second exit pauses overlap.
    for server in list(_running):
        server.close(wait=False)
    _reap(block=True)
