"""The prelude of a Python job started early: ``python3 -u -c <this file's text> JOB.py``.

A root engine makes a run's process a second before its instant and holds it at the
start gate (``odin.executor.gate``). For a Python job, most of what its start costs
is the interpreter's own, all of it before the first line of the job's code. So the gate, once the engine has put
the process in its run cgroup, execs the interpreter with this prelude (``--early``,
see ``gate.c``): the interpreter starts up while the run is held, then this waits for
the go line on stdin and only then runs the job's file, as ``python3 -u JOB.py``
would have. At the instant, only the job's own code is left to run.

What the job sees is what a plain start gives it: ``__main__`` holds the job's
names only, ``__file__`` and ``sys.argv`` name the job's file, ``sys.path[0]`` is
its directory, stdin is /dev/null, the scheduling policy is SCHED_OTHER again, an
uncaught exception prints a traceback that begins in the job's file and exits 1,
``SystemExit`` ends it with its code. End of input before the go line means the run
will not happen: exit 111 without a word, as the gate itself does.

With ``--nursery`` instead of a job file it is an owner's nursery
(``odin.executor.nursery``): it starts up once, then forks each run's process when the
engine asks (``_odin_nursery``); that process is born the engine's child
(``CLONE_PARENT``), sets itself up as the run (session, descriptors, environment,
directory) and goes on to wait for its go line as above.

Not imported by the engine: its text is passed to the interpreter, as the job's
owner, who may not be able to read the engine's files.
"""


def _odin_nursery() -> None:
    """Serve the engine on the socket at stdin until it closes it or sends nothing for
    the seconds after ``--nursery`` on the command line; returns only in a run's
    process, set up as its run, with ``sys.argv`` ``["-c", JOB_FILE]``.

    Each request is one packet: the marshalled (job file, working directory,
    environment), with the run's gate (its stdin) and output pipe attached. The run's
    process is made by the ``clone`` system call (its number follows the seconds) with
    ``CLONE_PARENT``, so it is born the engine's child; the reply is its pid in decimal,
    or ``-1`` when it could not be made.
    """
    import _socket  # not ``socket``: its enums would be in every job's sys.modules
    import ctypes
    import marshal
    import os
    import sys

    link = _socket.socket(fileno=os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    room = _socket.CMSG_SPACE(2 * 4)
    # A nursery's wake-ups are on the path of every run: not a batch task, as the gate was.
    os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    syscall = ctypes.PyDLL(None, use_errno=True).syscall  # with the GIL held, as os.fork
    syscall.restype = ctypes.c_long
    python = ctypes.pythonapi
    clone, flags = int(sys.argv[3]), 0x8000 | 17  # CLONE_PARENT, and SIGCHLD at its end
    link.send(b"ready")
    link.settimeout(float(sys.argv[2]))
    while True:
        try:
            packet, extra, _flags, _address = link.recvmsg(1 << 18, room)
        except TimeoutError:
            os._exit(0)  # unused for a while: the owner's next run starts another
        if not packet:
            os._exit(0)  # the engine is gone: so is its nursery
        fds = [
            int.from_bytes(data[i : i + 4], sys.byteorder)
            for level, kind, data in extra
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
            for i in range(0, len(data) - 3, 4)
        ]
        path, cwd, env = marshal.loads(packet)
        python.PyOS_BeforeFork()
        run = syscall(clone, flags, 0, 0, 0, 0)
        if run == 0:
            python.PyOS_AfterFork_Child()
            link.close()
            break
        python.PyOS_AfterFork_Parent()
        for fd in fds:
            os.close(fd)
        link.send(b"%d" % max(run, -1))
    # The run's process, a child of the engine; waits for the go line as a batch task.
    os.setsid()
    os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
    gate, output = fds
    os.dup2(gate, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(gate)
    os.close(output)
    os.environ.clear()
    os.environ.update(env)
    os.environb.clear()  # a copy of its own, made at start-up: made to match
    os.environb.update((os.fsencode(k), os.fsencode(v)) for k, v in env.items())
    try:
        os.chdir(cwd)
    except OSError:
        where = os.fsencode(cwd)
        os.write(2, b"odin: the job's owner may not enter its working directory: %s\n" % where)
        os._exit(112)  # as the gate says it
    sys.argv[:] = ["-c", path]


def _odin_start() -> None:
    import os  # names of this function's own: the job's __main__ is emptied below
    import sys

    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 64)
        if not chunk:
            os._exit(111)  # the run will not happen
        line += chunk
    try:  # noqa: SIM105 (contextlib would be one more module in the job's sys.modules)
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
    except OSError:
        pass
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    path = sys.argv[1]
    sys.argv[:] = sys.argv[1:]
    if not sys.flags.safe_path:
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    names = vars(sys.modules["__main__"])
    run_file = names.pop("_run_file")  # the names this prelude made there
    del names["_odin_start"], names["_odin_nursery"]
    loader = sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", path)
    names.update(__doc__=None, __package__=None, __loader__=loader, __file__=path)
    names["__cached__"] = None
    try:
        run_file(path, names)
    except SystemExit:
        raise
    except BaseException as error:
        trace = error.__traceback__
        own = ("<string>", run_file.__code__.co_filename)
        while trace is not None and trace.tb_frame.f_code.co_filename in own:
            trace = trace.tb_next  # the prelude's own frames: not the job's
        sys.excepthook(type(error), error.with_traceback(trace), trace)
        if isinstance(error, KeyboardInterrupt):
            import signal

            signal.signal(signal.SIGINT, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGINT)
        sys.exit(1)


def _run_file(path: str, names: dict[str, object]) -> None:
    """Run the job file's code in ``names``: from the checked-hash bytecode cached beside
    it when that matches the source, else compiled (and cached, unless bytecode is not
    written).

    Python caches no bytecode for the script it runs; this does, for a job's file,
    because ``compile()`` builds every AST node type before its first use: more CPU in
    each run than the few lines of a typical job cost.
    The cache is checked against the source's hash (PEP 552), not its time, so an
    edit within the same second, or the engine writing a new version, is never missed.
    """
    import _imp
    import marshal
    import os
    import sys

    external = sys.modules["_frozen_importlib_external"]
    try:
        with open(path, "rb") as handle:
            source = handle.read()
    except OSError as error:  # as the interpreter itself says it, with its exit code
        problem = f"[Errno {error.errno}] {error.strerror}"
        sys.stderr.write(f"{sys.executable}: can't open file {path!r}: {problem}\n")
        sys.exit(2)
    digest = _imp.source_hash(external._RAW_MAGIC_NUMBER, source)
    header = external.MAGIC_NUMBER + (3).to_bytes(4, "little") + digest  # checked hash
    try:
        cache = external.cache_from_source(path)
    except NotImplementedError:  # an interpreter that caches no bytecode
        cache = None
    code = None
    if cache is not None:
        try:
            with open(cache, "rb") as handle:
                cached = handle.read()
            if cached[:16] == header:
                code = marshal.loads(cached[16:])
        except (OSError, ValueError, EOFError, TypeError):
            code = None  # no cache, or a broken one: compiled again
    if code is not None:
        exec(code, names)
        return
    code = compile(source, path, "exec", dont_inherit=True)
    if cache is not None and not sys.dont_write_bytecode:
        temp = f"{cache}.{os.getpid()}"
        try:
            os.makedirs(os.path.dirname(cache), mode=0o700, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # the job's code
            with open(fd, "wb") as handle:
                handle.write(header + marshal.dumps(code))
            os.replace(temp, cache)
        except OSError:  # a directory the owner cannot write: compiled at every run
            try:  # noqa: SIM105 (as above)
                os.unlink(temp)
            except OSError:
                pass
    exec(code, names)


if __name__ == "__main__":
    if __import__("sys").argv[1] == "--nursery":
        _odin_nursery()
    _odin_start()
