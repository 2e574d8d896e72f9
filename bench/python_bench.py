#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""python_bench.py - 64-byte messages per second from Python, batched, one
producer process and one consumer process: ipcq (send_batch/recv_batch)
beside pyzmq PUSH/PULL over ipc:// and redis-py (RPUSH of a batch, LPOP
with a count) against a private redis-server on a Unix socket, in one run.

    IPCQ_BUILDDIR=BUILD python3 bench/python_bench.py [--messages N] [--batch B] [--runs R]

It starts its own ipcbrokerd (BUILD/daemon/ipcbrokerd, on a private socket
and namespace) and redis-server, and stops and removes them at the end.
The rate of a run is messages / (time from the producer's start to the
consumer's last message); the table gives the median of the runs.  A peer
whose Python module (zmq, redis) or server is missing is reported as not
run.  Numbers from a shared or busy machine vary: compare within a run.
"""
import argparse
import multiprocessing as mp
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

SRC = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def payloads(size, batch):
    return [(b"%08d" % i).ljust(size, b"x") for i in range(batch)]


# ---- ipcq ----

def ipcq_producer(sock, name, n, size, batch, barrier, t0):
    import ipcq
    with ipcq.connect(socket=sock) as c:
        q = c.open(name, send=True, recv=False)
        msgs = payloads(size, batch)
        barrier.wait()
        t0.value = time.monotonic()
        for _ in range(n // batch):
            sent = 0
            while sent < batch:
                sent += q.send_batch(msgs[sent:])


def ipcq_consumer(sock, name, n, batch, barrier, t1):
    import ipcq
    with ipcq.connect(socket=sock) as c:
        q = c.open(name, send=False, recv=True)
        barrier.wait()
        got = 0
        while got < n:
            got += len(q.recv_batch(batch, timeout=10))
        t1.value = time.monotonic()


# ---- pyzmq ----

def zmq_producer(addr, n, size, batch, multipart, barrier, t0):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PUSH)
    s.setsockopt(zmq.SNDHWM, 100000)
    s.connect(addr)
    msgs = payloads(size, batch)
    barrier.wait()
    t0.value = time.monotonic()
    for _ in range(n // batch):
        if multipart:
            s.send_multipart(msgs)
        else:
            for m in msgs:
                s.send(m)
    s.close(linger=-1)
    ctx.term()


def zmq_consumer(addr, n, batch, multipart, barrier, t1):
    import zmq
    ctx = zmq.Context()
    s = ctx.socket(zmq.PULL)
    s.setsockopt(zmq.RCVHWM, 100000)
    s.bind(addr)
    barrier.wait()
    got = 0
    while got < n:
        if multipart:
            got += len(s.recv_multipart())
        else:
            s.recv()
            got += 1
    t1.value = time.monotonic()
    s.close()
    ctx.term()


# ---- redis-py ----

def redis_producer(rsock, key, n, size, batch, barrier, t0):
    import redis
    r = redis.Redis(unix_socket_path=rsock)
    msgs = payloads(size, batch)
    barrier.wait()
    t0.value = time.monotonic()
    for _ in range(n // batch):
        r.rpush(key, *msgs)


def redis_consumer(rsock, key, n, batch, barrier, t1):
    import redis
    r = redis.Redis(unix_socket_path=rsock)
    barrier.wait()
    got = 0
    while got < n:
        ms = r.lpop(key, batch)
        if ms:
            got += len(ms)
        elif r.blpop([key], timeout=10):
            got += 1
    t1.value = time.monotonic()


def measure(producer, pargs, consumer, cargs, n):
    """One run: messages per second from the producer's start to the
    consumer's last message."""
    barrier = mp.Barrier(2)
    t0, t1 = mp.Value("d", 0.0), mp.Value("d", 0.0)
    cons = mp.Process(target=consumer, args=(*cargs, barrier, t1))
    cons.start()
    prod = mp.Process(target=producer, args=(*pargs, barrier, t0))
    prod.start()
    prod.join(120)
    cons.join(120)
    if prod.exitcode != 0 or cons.exitcode != 0:
        for p in (prod, cons):
            if p.is_alive():
                p.kill()
        raise RuntimeError(f"producer exited {prod.exitcode}, consumer {cons.exitcode}")
    return n / (t1.value - t0.value)


def wait_for(check, what, proc, seconds=5.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not start in {seconds} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=400_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n = a.messages // a.batch * a.batch
    build = os.environ.get("IPCQ_BUILDDIR", SRC)
    daemon = os.path.join(build, "daemon", "ipcbrokerd")
    if not os.access(daemon, os.X_OK):
        sys.exit(f"no {daemon}: set IPCQ_BUILDDIR to a build directory")
    lib = os.path.join(build, "libclient", ".libs", "libipcq.so")
    if os.path.exists(lib):
        os.environ.setdefault("IPCQ_LIBRARY", lib)
    sys.path.insert(0, os.path.join(SRC, "python"))
    import ipcq

    tmp = tempfile.mkdtemp(prefix="ipcq-pybench.")
    ns = f"pybench{os.getpid()}"
    sock = os.path.join(tmp, "ctl.sock")
    procs = []
    results = {}
    try:
        d = subprocess.Popen([daemon, "--namespace", ns, "--socket", sock],
                             stdout=open(os.path.join(tmp, "daemon.log"), "w"), stderr=subprocess.STDOUT)
        procs.append(d)
        wait_for(lambda: ipcq.connect(socket=sock).close() is None, "ipcbrokerd", d)
        with ipcq.connect(socket=sock) as c:
            c.create("bench")
            try:
                results["ipcq send_batch/recv_batch"] = [
                    measure(ipcq_producer, (sock, "bench", n, a.size, a.batch),
                            ipcq_consumer, (sock, "bench", n, a.batch), n) for _ in range(a.runs)]
            finally:
                c.delete("bench")

        try:
            import zmq  # noqa: F401
            for multipart, label in ((False, "pyzmq PUSH/PULL ipc://, send per message"),
                                     (True, f"pyzmq PUSH/PULL ipc://, send_multipart ×{a.batch}")):
                addr = f"ipc://{tmp}/zmq{int(multipart)}.sock"
                results[label] = [measure(zmq_producer, (addr, n, a.size, a.batch, multipart),
                                          zmq_consumer, (addr, n, a.batch, multipart), n)
                                  for _ in range(a.runs)]
        except ImportError:
            results["pyzmq"] = "not run (no module zmq: Debian python3-zmq)"

        try:
            import redis
            server = shutil.which("redis-server")
            if not server:
                raise ImportError("redis-server")
            rsock = os.path.join(tmp, "redis.sock")
            rs = subprocess.Popen([server, "--port", "0", "--unixsocket", rsock, "--unixsocketperm", "700",
                                   "--save", "", "--appendonly", "no", "--dir", tmp,
                                   "--logfile", os.path.join(tmp, "redis.log"), "--daemonize", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(rs)
            wait_for(lambda: redis.Redis(unix_socket_path=rsock).ping(), "redis-server", rs)
            results[f"redis-py RPUSH ×{a.batch} / LPOP count {a.batch}"] = [
                measure(redis_producer, (rsock, "bench", n, a.size, a.batch),
                        redis_consumer, (rsock, "bench", n, a.batch), n) for _ in range(a.runs)]
        except ImportError as e:
            results["redis-py"] = f"not run ({e.name or e}: Debian python3-redis, redis-server)"
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"{a.size} B messages, batches of {a.batch}, one producer and one consumer process, "
          f"{n} messages a run, median of {a.runs} runs (Python {sys.version.split()[0]})\n")
    print("| | msgs/s (median) | runs |")
    print("|---|---:|---|")
    for label, r in results.items():
        if isinstance(r, str):
            print(f"| {label} | – | {r} |")
        else:
            print(f"| {label} | {statistics.median(r):,.0f} | {', '.join(f'{x:,.0f}' for x in r)} |")


if __name__ == "__main__":
    mp.set_start_method("fork")
    main()
