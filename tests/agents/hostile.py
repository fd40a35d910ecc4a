"""A hostile agent: tries every escape an agent must not have, and reports what each attempt got.

Started by tests/test_confinement_e2e.py with an input naming its targets. Every attempt is one
line of the result: "ok:..." when it got through (a failure of the sandbox) or "denied:<why>".
Standard library and the SDK only, so it runs in every tier (the Docker image's Python too).
"""

import ctypes
import json
import os
import socket

from symbi_agent import agent

task = agent.input()
data = task["data_dir"]
r = {}


def attempt(name, fn):
    try:
        r[name] = "ok:" + str(fn())[:40]
    except Exception as exc:  # noqa: BLE001 - any refusal counts
        r[name] = "denied:" + type(exc).__name__


def read(path):
    with open(path, "rb") as f:
        return len(f.read())


attempt("read_master_key", lambda: read(os.path.join(data, "keys", "master.key")))
attempt("read_signing_key", lambda: read(os.path.join(data, "keys", "runtime_ed25519.pem")))
attempt("read_audit_db", lambda: read(os.path.join(data, "audit.db")))
attempt("read_shadow", lambda: read("/etc/shadow"))
attempt("read_outside", lambda: read(task["outside_file"]))


def write_data_dir():
    with open(os.path.join(data, "planted.txt"), "w") as f:
        f.write("owned")
    return "written"


attempt("write_data_dir", write_data_dir)


def tcp():
    s = socket.create_connection(("127.0.0.1", task["tcp_port"]), timeout=3)
    s.close()
    return "connected"


attempt("tcp_loopback", tcp)


def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"exfiltrated", ("127.0.0.1", task["udp_port"]))
    s.close()
    return "sent"


attempt("udp_send", udp)


def signal_engine():
    os.kill(task["engine_pid"], 0)  # signal 0: only asks whether the engine may be signalled
    return "signalled"


attempt("signal_engine", signal_engine)


def ptrace_engine():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
    # PTRACE_SEIZE attaches without stopping the engine (an unconfined control run must not freeze it)
    if libc.ptrace(0x4206, task["engine_pid"], None, None) != 0:
        raise PermissionError(os.strerror(ctypes.get_errno()))
    libc.ptrace(17, task["engine_pid"], None, None)  # PTRACE_DETACH
    return "attached"


attempt("ptrace_engine", ptrace_engine)


def write_workspace():  # the control: what it may do
    with open("scratch.txt", "w") as f:
        f.write("mine")
    return "written"


attempt("write_workspace", write_workspace)
r["uid"] = os.getuid()
print("HOSTILE " + json.dumps(r), flush=True)
agent.result(r)
