"""A throw-away single-node SLURM cluster (munged + slurmctld + slurmd) in a temporary folder.

Everything lives under one folder: slurm.conf, the munge key and socket, state, spool, logs and pid
files. Nothing is installed and nothing outside the folder is touched: the daemons are started by
pid in the foreground (no systemd), on free TCP ports, and the client commands find the cluster
through the SLURM_CONF variable of `cluster.env`. Needs root (slurmd runs jobs as their user).

    python tests/slurm/cluster.py start DIR     # prints `export SLURM_CONF=...` lines
    python tests/slurm/cluster.py stop DIR      # cancels jobs, stops the daemons it started

Partitions: `cpu` (default) and `gpu-sim`, both on the one node `localhost`. The node declares two
simulated GPUs (GRES `gpu:sim:2`, backed by /dev/null and /dev/zero): `sbatch --gpus=sim:1` is
accepted and scheduled as on a GPU cluster, but there is no GPU: jobs still compute on the CPU.
Finished jobs stay visible to `squeue --states=all` for an hour (MinJobAge), as the SLURM plugin's
squeue status checks and the tests need.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo", "srun")
NODE = "localhost"
PARTITIONS = ("cpu", "gpu-sim")
GPU_MODEL = "sim"  # GRES type of the simulated GPUs: `--gpus=sim:1` works as on a real cluster


def missing() -> list[str]:
    """What this machine lacks to run the cluster (empty list: everything is there)."""
    sbin = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    gone = [tool for tool in DAEMONS + CLIENTS if shutil.which(tool, path=sbin) is None]
    if os.geteuid() != 0:
        gone.append("root (slurmd must run as root)")
    return gone


def _which(tool: str) -> str:
    path = shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))
    if path is None:
        raise FileNotFoundError(f"{tool}: not found on PATH or in /usr/sbin")
    return path


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _real_memory_mb() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return max(256, int(line.split()[1]) // 1024 - 512)  # leave room for the OS
    return 1024


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class Cluster:
    """One single-node cluster under `root`; `start()` then `stop()` (idempotent, also after a failed start)."""

    def __init__(self, root: str | Path, *, cpus: int | None = None, memory_mb: int | None = None,
                 gpus: int = 2, min_job_age: int = 3600):
        if not 0 <= gpus <= 4:
            raise ValueError("gpus: 0 to 4 simulated GPUs")
        self.root = Path(root).resolve()
        self.conf = self.root / "slurm.conf"
        self.socket = self.root / "munge" / "munge.socket"
        self.logs = self.root / "log"
        self.cpus = cpus or _cpus()
        self.memory_mb = memory_mb or _real_memory_mb()
        self.gpus = gpus
        self.min_job_age = min_job_age
        self.procs: dict[str, subprocess.Popen] = {}
        self._logs: list = []

    # -- environment of every client command (sbatch, squeue, srun inside jobs, ...) -------------
    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands and for Snakemake: SLURM_CONF, and `bin/` first on PATH."""
        path = os.pathsep.join([str(self.bin), os.environ.get("PATH", "")])
        return {**os.environ, "SLURM_CONF": str(self.conf), "MUNGE_SOCKET": str(self.socket), "PATH": path}

    def run(self, *cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, check=check,
                              timeout=timeout)

    def write_config(self) -> None:
        os.chmod(self.root, 0o755)  # munged insists that every folder above its socket is searchable
        for sub in ("munge", "state", "spool", "log", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o755)  # munged: socket dir must be searchable by all
        key = self.root / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        ctld_port, slurmd_port = _free_ports(2)
        r = self.root
        lines = [
            "# single-node test cluster written by tests/slurm/cluster.py",
            "ClusterName=pntktest",
            f"SlurmctldHost={NODE}",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "SlurmUser=root",
            "SlurmdUser=root",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.socket}",
            f"StateSaveLocation={r / 'state'}",
            f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}",
            f"SlurmdPidFile={r / 'run' / 'slurmd.pid'}",
            f"SlurmctldLogFile={self.logs / 'slurmctld.log'}",
            f"SlurmdLogFile={self.logs / 'slurmd.log'}",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "SchedulerType=sched/builtin",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "JobCompType=jobcomp/none",
            "MpiDefault=none",
            "ReturnToService=2",
            "EnforcePartLimits=ALL",  # reject a job the node can never run at sbatch time (no endless PENDING)
            "SlurmdParameters=config_overrides",
            f"MinJobAge={self.min_job_age}",
            "KillWait=5",
            "InactiveLimit=0",
            "SlurmctldTimeout=60",
            "SlurmdTimeout=60",
            "GresTypes=gpu",
            f"NodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={self.memory_mb} "
            + (f"Gres=gpu:{GPU_MODEL}:{self.gpus} " if self.gpus else "") + "State=UNKNOWN",
            f"PartitionName={PARTITIONS[0]} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={PARTITIONS[1]} Nodes={NODE} MaxTime=INFINITE State=UP",
        ]
        self.conf.write_text("\n".join(lines) + "\n")
        # Simulated GPUs, so that `--gpus=1` is scheduled (and GPU jobs are counted) on a machine without
        # any: slurmd drops a GPU without a device file, so each one names a harmless character device.
        # Nothing is bound (task/none, no cgroups); jobs compute on the CPU.
        devices = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random"][: self.gpus]
        (self.root / "gres.conf").write_text(
            "".join(f"NodeName={NODE} Name=gpu Type={GPU_MODEL} File={d}\n" for d in devices))
        # snakemake-executor-plugin-slurm-jobstep removes every SLURM_* variable (SLURM_CONF too) before it
        # calls srun inside a job; real clusters keep slurm.conf where srun looks by default, this one
        # does not, so jobs get an srun that knows the way.
        self.bin.mkdir(exist_ok=True)
        srun = self.bin / "srun"
        srun.write_text(f'#!/bin/sh\nexport SLURM_CONF="{self.conf}"\nexec "{_which("srun")}" "$@"\n')
        srun.chmod(0o755)

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.logs / f"{name}.stdout", "ab")
        self._logs.append(log)
        self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.2)
        if self.procs[name].poll() is not None:
            raise RuntimeError(f"{name} exited at once (rc {self.procs[name].returncode}):\n{self.tail(name)}")

    def tail(self, name: str, n: int = 30) -> str:
        out = []
        for f in sorted(self.logs.glob(f"{name}*")):
            lines = f.read_text(errors="replace").splitlines()[-n:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)

    def start(self, timeout: float = 90) -> "Cluster":
        self.write_config()
        m = self.root / "munge"
        self._spawn("munged", [_which("munged"), "--foreground", f"--socket={self.socket}",
                               f"--key-file={m / 'munge.key'}", f"--pid-file={m / 'munged.pid'}",
                               f"--seed-file={m / 'munged.seed'}", f"--log-file={self.logs / 'munged.log'}"])
        self._wait(lambda: self.socket.exists(), timeout, "munged socket")
        self._spawn("slurmctld", [_which("slurmctld"), "-D", "-c", "-f", str(self.conf)])
        self._wait(lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0, timeout,
                   "slurmctld to answer `scontrol ping`")
        self._spawn("slurmd", [_which("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)])
        self._wait(self._node_idle, timeout, f"node {NODE} to be idle")
        return self

    def _node_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.split()
        if any(s.startswith(("drain", "inval")) for s in out):  # a config error, not a slow start
            reason = self.run("scontrol", "show", "node", NODE, check=False).stdout
            raise RuntimeError(f"node {NODE} is {out[0]}:\n{reason}")
        return bool(out) and all(s.rstrip("*") in ("idle", "mixed", "allocated") for s in out)

    def _wait(self, ok, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} died (rc {proc.returncode}) while waiting for {what}:\n"
                                       f"{self.tail(name)}")
            try:
                if ok():
                    return
            except (OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"waited {timeout:.0f} s for {what}:\n" + "\n".join(self.tail(n) for n in self.procs))

    def jobs(self) -> list[dict]:
        """Jobs the controller still knows (MinJobAge keeps finished ones): id, name, state, partition."""
        out = self.run("squeue", "--states=all", "-h", "-o", "%i|%j|%T|%P|%k", check=False).stdout
        rows = [line.split("|", 4) for line in out.splitlines() if line.strip()]
        return [dict(zip(("id", "name", "state", "partition", "comment"), r)) for r in rows]

    def stop(self, timeout: float = 20) -> None:
        """Cancel every job of this cluster, then stop the daemons this object started (by pid)."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", str(os.getuid()), check=False)  # this cluster only (SLURM_CONF)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and any(
                    j["state"] in ("RUNNING", "PENDING", "COMPLETING") for j in self.jobs()):
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> "Cluster":
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("start", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    action, root = argv[0], Path(argv[1]).resolve()
    state = root / "cluster.json"
    if action == "start":
        gone = missing()
        if gone:
            print(f"missing: {', '.join(gone)}", file=sys.stderr)
            return 1
        root.mkdir(parents=True, exist_ok=True)
        cluster = Cluster(root)
        try:
            cluster.start()
        except BaseException:
            cluster.stop()
            raise
        state.write_text(json.dumps({n: p.pid for n, p in cluster.procs.items()}))
        print(f"export SLURM_CONF={cluster.conf}")
        print(f"export MUNGE_SOCKET={cluster.socket}")
        print(f"export PATH={cluster.bin}:$PATH")
        return 0
    pids = json.loads(state.read_text()) if state.exists() else {}
    conf = root / "slurm.conf"
    if conf.exists() and "slurmctld" in pids:
        env = {**os.environ, "SLURM_CONF": str(conf)}
        subprocess.run(["scancel", "--full", "--user", str(os.getuid())], env=env, check=False)
        time.sleep(2)
    for name in ("slurmd", "slurmctld", "munged"):
        pid = pids.get(name)
        if pid is None:
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(40):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.25)
        else:
            os.kill(pid, signal.SIGKILL)
    state.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
