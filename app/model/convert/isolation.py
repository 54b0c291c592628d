"""Defence in depth for the conversion worker: what it may import, see, reach and write.

Loading a model runs the model's library code, and a pickle runs whatever the file
names; :mod:`app.model.picklescan` decides beforehand what may run. This module is the
second line, for the case where that decision was wrong:

* imports: only installed packages. The worker removes its own folder, the working
  directory and ``''`` from ``sys.path`` in its first lines (older interpreters put
  them there; 3.11+ also gets ``PYTHONSAFEPATH``), and runs in its job folder, which
  holds only what ModelShip wrote. Nothing is ever added for the model's folder.
* environment: empty and explicit (:func:`worker_env`): PATH, locale, HOME and TMPDIR
  pointing at the job folder, and what the platform itself needs to start a program;
  no ``MODELSHIP_*``, cloud credentials or ``PYTHONPATH``.
* Linux only (:func:`apply`, run by the worker before it imports anything else):
  a new user and network namespace, so the worker has no network (not even
  127.0.0.1), with ``/run`` covered by an empty tmpfs (the Docker and D-Bus sockets
  live there); and Landlock, so that every file outside the job folder is read-only,
  and (kernel 6.12+) no signals to other processes and no abstract sockets. Each part
  falls back on its own where the kernel refuses it; the record says what applied.

Windows and macOS get the first two only: there the worker can reach the network
and write wherever the user can.

Runs as a plain file as well (``python isolation.py --probe DIR``): the parent asks
that way what would apply, for ``modelship inspect``. Standard library only, and
nothing newer than Python 3.8, because the user's own interpreter (``--python``)
runs it.
"""

from __future__ import annotations

import json
import os
import sys

# the environment a worker gets from ours: nothing else crosses
_PASS = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "LC_MESSAGES", "TZ")
# what Windows needs to start a program (Python needs SYSTEMROOT for sockets and random)
_PASS_WINDOWS = (
    "SYSTEMROOT",
    "SYSTEMDRIVE",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "NUMBER_OF_PROCESSORS",
    "PROCESSOR_ARCHITECTURE",
)
# the PyInstaller bundle re-invoking itself: its bootloader's own variables (where a
# one-file bundle was unpacked, the original library path)
_PASS_FROZEN_PREFIXES = ("_PYI_", "_MEIPASS", "PYINSTALLER_")
_PASS_FROZEN = ("LD_LIBRARY_PATH", "LD_LIBRARY_PATH_ORIG", "DYLD_LIBRARY_PATH")


def worker_env(job_dir: str, frozen: bool = False, environ: dict | None = None) -> dict:
    """The whole environment of a worker that runs in ``job_dir``."""
    src = dict(os.environ if environ is None else environ)
    env = {k: src[k] for k in _PASS if src.get(k)}
    if sys.platform == "win32":
        upper = {k.upper(): v for k, v in src.items()}
        env.update({k: upper[k] for k in _PASS_WINDOWS if upper.get(k)})
        env["USERPROFILE"] = job_dir
        env["TEMP"] = env["TMP"] = job_dir
    if frozen:
        env.update({k: v for k, v in src.items() if k.startswith(_PASS_FROZEN_PREFIXES)})
        env.update({k: src[k] for k in _PASS_FROZEN if src.get(k)})
    env.setdefault("PATH", os.defpath)
    env["HOME"] = job_dir
    env["TMPDIR"] = job_dir
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONSAFEPATH"] = "1"  # 3.11+: no script folder on sys.path (older: see clean_path)
    env["PYTHONNOUSERSITE"] = "1"  # nothing from a user-writable site folder
    return env


def clean_path(script: str) -> list:
    """Drop the script's folder, the working directory and '' from ``sys.path``.

    Returns what was removed. Called by the worker before it imports anything that a
    model could shadow (numpy, sklearn, xgboost, ...).
    """
    here = os.path.dirname(os.path.abspath(script))
    cwd = os.getcwd()
    removed = []
    for entry in list(sys.path):
        full = os.path.abspath(entry) if entry else ""
        if entry in ("", ".") or full in (here, cwd):
            sys.path.remove(entry)
            removed.append(entry)
    return removed


# ---------------------------------------------------------------------------
# Linux: namespaces and Landlock
# ---------------------------------------------------------------------------
_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC, _MS_REC, _MS_PRIVATE = 2, 4, 8, 0x4000, 0x40000
_PR_SET_NO_NEW_PRIVS = 38
# landlock_create_ruleset, landlock_add_rule, landlock_restrict_self: the same numbers
# on every architecture (added after the syscall tables were unified)
_SYS_CREATE, _SYS_ADD, _SYS_RESTRICT = 444, 445, 446
_LL_VERSION = 1
_LL_RULE_PATH_BENEATH = 1
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1, 2, 4, 8
_FS_ABI1 = (1 << 13) - 1  # execute ... make_sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1, 2
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1, 2


def _libc():  # type: ignore[no-untyped-def]
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def _errno_text(ctypes) -> str:  # type: ignore[no-untyped-def]
    err = ctypes.get_errno()
    return os.strerror(err) if err else "refused"


def _namespaces(keep_run: bool) -> dict:
    """No network: a new user + network namespace (only a loopback device, down)."""
    ctypes, libc = _libc()
    uid, gid = os.geteuid(), os.getegid()
    flags = _CLONE_NEWUSER | _CLONE_NEWNET | _CLONE_NEWNS
    if libc.unshare(flags) != 0:
        first = _errno_text(ctypes)
        flags = _CLONE_NEWUSER | _CLONE_NEWNET
        if libc.unshare(flags) != 0:
            return {"network": False, "network_why": f"user namespaces are not available ({first})"}
    try:
        # the same user and group inside as outside, so the job folder stays writable
        with open("/proc/self/setgroups", "w") as fh:
            fh.write("deny")
        with open("/proc/self/uid_map", "w") as fh:
            fh.write(f"{uid} {uid} 1\n")
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"{gid} {gid} 1\n")
    except OSError as exc:
        return {"network": True, "network_why": "", "uid_map": f"not written ({exc.strerror})"}
    out = {"network": True, "network_why": "", "sockets_hidden": False}
    if flags & _CLONE_NEWNS and not keep_run:
        # the Docker, containerd and D-Bus sockets are files under /run: an empty tmpfs
        # over it (in this mount namespace only) puts them out of reach
        private = libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) == 0
        if private and os.path.isdir("/run"):
            ok = (
                libc.mount(
                    b"tmpfs",
                    b"/run",
                    b"tmpfs",
                    _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                    b"size=64k,mode=755",
                )
                == 0
            )
            out["sockets_hidden"] = ok
            if not ok:
                out["sockets_why"] = _errno_text(ctypes)
    return out


def _landlock(writable: str, net: bool) -> dict:
    """Everything read-only (and executable) except ``writable``; TCP too where no
    network namespace could be made; no signals or abstract sockets outside (ABI 6)."""
    ctypes, libc = _libc()
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(_SYS_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(_LL_VERSION))
    if abi < 1:
        return {
            "read_only": False,
            "read_only_why": f"Landlock is not available ({_errno_text(ctypes)})",
        }

    class RulesetAttr(ctypes.Structure):
        _fields_ = (
            ("handled_access_fs", ctypes.c_uint64),
            ("handled_access_net", ctypes.c_uint64),
            ("scoped", ctypes.c_uint64),
        )

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))

    fs = _FS_ABI1 | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    attr = RulesetAttr(fs, 0, 0)
    size = 8
    out = {"read_only": False, "landlock_abi": int(abi)}
    if abi >= 4 and not net:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    fd = libc.syscall(_SYS_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        out["read_only_why"] = f"Landlock refused the rules ({_errno_text(ctypes)})"
        return out
    try:
        file_rights = (
            _FS_EXECUTE | _FS_WRITE_FILE | _FS_READ_FILE | (_FS_TRUNCATE if abi >= 3 else 0)
        )
        rules = [
            ("/", _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR),
            (writable, fs),
            ("/dev/null", file_rights),
        ]
        for path, rights in rules:
            try:
                pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                rule = PathBeneath(rights, pfd)
                if libc.syscall(_SYS_ADD, fd, _LL_RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
                    out["read_only_why"] = f"Landlock refused a rule ({_errno_text(ctypes)})"
                    return out
            finally:
                os.close(pfd)
        libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        if libc.syscall(_SYS_RESTRICT, fd, 0) != 0:
            out["read_only_why"] = f"Landlock refused to apply ({_errno_text(ctypes)})"
            return out
    finally:
        os.close(fd)
    out["read_only"] = True
    out["tcp_blocked"] = bool(attr.handled_access_net)
    out["signals_scoped"] = bool(attr.scoped)
    return out


def apply(job_dir: str, keep_run: bool = False) -> dict:
    """Isolate this process (and what it starts) as far as the OS allows; say what applied.

    Must run while the process has a single thread (before numpy & co. are imported):
    the kernel refuses a new user namespace otherwise.
    """
    rec = {"platform": sys.platform, "clean_imports": True, "network": False, "read_only": False}
    if not sys.platform.startswith("linux"):
        why = "there is no sandbox for a process on " + (
            "Windows"
            if sys.platform == "win32"
            else "macOS"
            if sys.platform == "darwin"
            else sys.platform
        )
        rec.update(network_why=why, read_only_why=why)
        return rec
    try:
        rec.update(_namespaces(keep_run))
    except Exception as exc:  # never stop a conversion for this: record it
        rec.update(network=False, network_why=f"{type(exc).__name__}: {exc}")
    try:
        rec.update(_landlock(os.path.abspath(job_dir), rec["network"]))
    except Exception as exc:
        rec.update(read_only=False, read_only_why=f"{type(exc).__name__}: {exc}")
    return rec


def describe(rec: dict | None) -> str:
    """What applied, in one plain sentence (inspect, the conversion report)."""
    if not rec:
        return "Conversion isolation: unknown (the conversion process did not say)."
    if rec.get("network") and rec.get("read_only"):
        return (
            "Conversion runs isolated: no network, read-only files except its output, "
            "no code from beside the model."
        )
    parts = ["no code from beside the model", "only a minimal environment"]
    why = rec.get("network_why")
    if rec.get("network"):
        parts.append("no network")
    elif rec.get("tcp_blocked"):
        parts.append(f"TCP connections blocked, other network traffic not ({why})")
    else:
        parts.append(f"network NOT blocked ({why})")
    if rec.get("read_only"):
        parts.append("read-only files except its output")
    else:
        parts.append(f"files NOT read-only ({rec.get('read_only_why')})")
    return "Conversion runs partly isolated: " + ", ".join(parts) + "."


def probe(job_dir: str, connect: int | None = None, write: str | None = None) -> dict:
    """Apply the isolation in this process, then test it: connect to 127.0.0.1:PORT and
    create the file WRITE (both must fail when the record says they are blocked)."""
    rec = apply(job_dir)
    if connect:
        import socket

        try:
            socket.create_connection(("127.0.0.1", connect), timeout=3).close()
            rec["connect_test"] = "connected"
        except OSError as exc:
            rec["connect_test"] = f"failed: {exc.strerror or exc}"
    if write:
        try:
            with open(write, "w") as fh:
                fh.write("written from inside the isolated process\n")
            rec["write_test"] = "written"
        except OSError as exc:
            rec["write_test"] = f"failed: {exc.strerror or exc}"
    return rec


if __name__ == "__main__":  # python isolation.py --probe DIR [PORT] [FILE]
    clean_path(__file__)
    args = sys.argv[1:]
    if len(args) < 2 or args[0] != "--probe":
        print("usage: isolation.py --probe DIR [PORT] [FILE]", file=sys.stderr)
        sys.exit(2)
    port = int(args[2]) if len(args) > 2 and args[2] else None
    print(json.dumps(probe(args[1], port, args[3] if len(args) > 3 else None)))
