"""Starts the scenario runner's KFP components from a warm process instead of a new interpreter each.

kfp.local's SubprocessRunner runs every lightweight component as ``sh -ec '<write the program to a temp
file; python3 -m kfp.dsl.executor_main ...>' <program> <args>``: a new interpreter that imports kfp,
protobuf, boto3, botocore and sagelift before the step does anything (~0.4 s of CPU a step, ~17 steps a
run, ~30 runs in tests/scenarios). ``ForkServer`` is a process started once, as a component's
interpreter would start (``_KFP_RUNTIME=true``, this environment), that imports those modules and then
forks one child per component: the child gets the command's program, arguments and environment (the
runner's ``os.environ`` at that moment plus the task's variables, as ``Popen`` would), its stdout and
stderr on a pipe the runner reads line by line as kfp.local does, and runs ``kfp.dsl.executor_main`` as
``python -m`` runs it; its exit status (``-15`` after SIGTERM) is the step's, as ``Popen.wait()`` gives.
As Airflow's ``mp_forkserver_preload``, what is preloaded is only imported, never run: each step still
starts from a process that has run no step code.

What it does not do: run a command of another shape (a container component, pip installs: those go to
kfp.local's own subprocess, ``run_local_subprocess``), preload ``sagelift_kfp`` itself (its ``steps``
module reads ``SAGELIFT_KFP_RETRY_DELAY`` at import; only the modules it imports are preloaded, and
none of them may read the environment at import: the server's is the runner's at start, not the
step's), or run two steps at once (kfp.local runs one at a time; requests are served in turn).

The server ignores SIGTERM, so the runner's terminate (SIGTERM to every process below it) reaches the
steps only; it exits when the runner closes its socket.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

KFP_DIR = Path(__file__).resolve().parents[1]
EXECUTOR_MODULE = "kfp.dsl.executor_main"
# What kfp's component_factory writes as a lightweight component's command (with python3 replaced by
# kfp.local's interpreter), compared with its runs of blanks as one: the only shape the server runs.
SCRIPT = (
    'program_path=$(mktemp -d) printf "%s" "$0" > "$program_path/ephemeral_component.py" '
    f"_KFP_RUNTIME=true {{python}} -m {EXECUTOR_MODULE} --component_module_path "
    '"$program_path/ephemeral_component.py" "$@"'
)
_HEADER = struct.Struct("!I")


def preload_modules(glue: Path = KFP_DIR / "sagelift_kfp") -> list[str]:
    """What a step imports before it runs: the executor's modules and everything the glue modules import
    at their top level (not the glue itself)."""
    modules = {"kfp.dsl.executor", "kfp.dsl.kfp_config", "kfp.dsl.utils", "boto3", "botocore.session"}
    for path in sorted(glue.glob("*.py")):
        for node in ast.parse(path.read_text(), str(path)).body:
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module)
    return sorted(m for m in modules - {"__future__"} if not m.startswith("sagelift_kfp"))


def parse_command(command: Sequence[str]) -> tuple[str, list[str]] | None:
    """(program, arguments) of a lightweight component's command; None for any other shape."""
    if len(command) < 4 or list(command[:2]) != ["sh", "-ec"]:
        return None
    if " ".join(command[2].split()) != SCRIPT.format(python=sys.executable):
        return None
    return command[3], list(command[4:])


def _send(sock: socket.socket, payload: dict, fds: Sequence[int] = ()) -> None:
    data = json.dumps(payload).encode()
    socket.send_fds(sock, [_HEADER.pack(len(data))], list(fds))
    sock.sendall(data)


def _receive(sock: socket.socket) -> tuple[dict | None, list[int]]:
    header, fds, _, _ = socket.recv_fds(sock, _HEADER.size, 1)
    if len(header) < _HEADER.size:
        return None, fds
    (size,) = _HEADER.unpack(header)
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None, fds
        data += chunk
    return json.loads(data), fds


class ForkServer:
    """The runner's side: starts the server process and runs commands through it."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        environment = {**os.environ, **(env or {}), "_KFP_RUNTIME": "true"}
        self.process = subprocess.Popen(
            [sys.executable, __file__, str(theirs.fileno()), *preload_modules()],
            pass_fds=[theirs.fileno()],
            env=environment,
            stdin=subprocess.DEVNULL,
        )
        theirs.close()

    def run(self, command: Sequence[str], env_vars: Mapping[str, str] | None = None) -> int | None:
        """Run a lightweight component's command, printing its output; its exit status, or None when
        the command is of another shape (the caller runs it itself)."""
        parsed = parse_command(command)
        if parsed is None:
            return None
        program, args = parsed
        read, write = os.pipe()
        try:
            env = {**os.environ, **(env_vars or {}), "_KFP_RUNTIME": "true"}
            _send(self._sock, {"program": program, "args": args, "env": env}, [write])
        finally:
            os.close(write)
        with open(read, encoding="utf-8", errors="replace") as output:
            for line in iter(output.readline, ""):
                print(line, end="")
        print("\n")  # as kfp.local separates a step's output
        answer, _ = _receive(self._sock)
        if answer is None:
            raise RuntimeError("the component fork server exited")
        return int(answer["status"])

    def close(self) -> None:
        self._sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the server process --------------------------------------------------------------------------------
def _child(program: str, args: list[str], env: dict[str, str], output: int) -> int:
    """In the forked child: what ``sh -ec`` and ``python -m kfp.dsl.executor_main`` would do."""
    import runpy

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    for fd in (stdin, output):
        os.close(fd)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115  (a pipe: block-buffered, as for python)
    sys.stderr = io.TextIOWrapper(
        open(2, "wb", closefd=False),  # noqa: SIM115
        line_buffering=True,
        errors="backslashreplace",
    )
    os.environ.clear()
    os.environ.update(env)
    directory = tempfile.mkdtemp()
    path = os.path.join(directory, "ephemeral_component.py")
    with open(path, "w") as file:
        file.write(program)
    sys.argv = [EXECUTOR_MODULE, "--component_module_path", path, *args]
    status = 0
    try:
        runpy.run_module(EXECUTOR_MODULE, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code is None:
            status = 0
        elif isinstance(exit_.code, int):
            status = exit_.code
        else:
            print(exit_.code, file=sys.stderr)
            status = 1
    except BaseException:
        traceback.print_exc()
        status = 1
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    return status


def serve(fd: int, preload: Sequence[str]) -> None:
    import importlib

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the runner's terminate is for the steps
    sys.path[0] = os.getcwd()  # as for ``python -m``, not this file's folder
    for name in preload:
        # A module that does not import is left to the step, which fails on it as a new interpreter would.
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    sock = socket.socket(fileno=fd)
    while True:
        request, fds = _receive(sock)
        if request is None:
            return
        (output,) = fds
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                sock.close()
                status = _child(request["program"], request["args"], request["env"], output)
            finally:
                os._exit(status)
        os.close(output)
        _, wait_status = os.waitpid(pid, 0)
        _send(sock, {"status": os.waitstatus_to_exitcode(wait_status)})


if __name__ == "__main__":
    serve(int(sys.argv[1]), sys.argv[2:])
