"""A real single-node SLURM cluster on 127.0.0.1, from the Debian packages (slurm-wlm, munge), for tests and by hand.

    with SlurmCluster(tmp_path) as cluster:       # munged, slurmctld and slurmd run as child processes
        subprocess.run(["sbatch", ...], env=cluster.env)

By hand (as root), around any command; the cluster is stopped when the command ends:

    .venv/bin/python tests/slurm_cluster.py -- .venv/bin/snakemake --profile profiles/slurm --configfile ...

The node has the machine's CPUs and memory and one GPU that exists only on paper (a `gres` without a device file), so
GPU requests are scheduled and run on the CPU. Job status comes from `squeue` (no accounting database): jobs stay
visible to squeue/scontrol for MinJobAge = 1 hour after they end, which is what the executor plugin's `squeue`
status mode needs.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
SLURM_PACKAGES = "slurm-wlm munge"  # what `.ci/run` installs with apt when these are missing
# The executor plugin's job step drops SLURM_CONF before its inner `srun`, so, as on a real cluster, the
# configuration must sit where every client looks first. The cluster links it there and removes the link on stop.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
CLUSTER_NAME = "semvideo-test"
CLUSTER_NAME_ENV = f"SLURM_CLUSTER_NAME={CLUSTER_NAME}".encode()  # in the environment of every job's processes
TIMINGS: dict[str, float] = {}  # seconds, filled by tests/test_slurm.py and printed at the end of pytest


def missing_requirements() -> str | None:
    """Why a cluster cannot start here, or None."""
    if os.geteuid() != 0:
        return "the SLURM test cluster needs root (slurmd launches jobs as their submitting user)"
    missing = [
        name for name in DAEMONS + CLIENTS if shutil.which(name) is None and not Path("/usr/sbin", name).exists()
    ]
    if missing:
        return f"SLURM is not installed (missing {', '.join(missing)}): apt-get install {SLURM_PACKAGES}"
    if _leftover_link():
        SYSTEM_CONF.unlink()  # from a test cluster that was killed before it could stop
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        return f"{SYSTEM_CONF} exists: this machine has a SLURM configuration of its own, which the test leaves alone"
    return None


def _leftover_link() -> bool:
    if not SYSTEM_CONF.is_symlink():
        return False
    target = SYSTEM_CONF.resolve()
    return not target.exists() or f"ClusterName={CLUSTER_NAME}" in target.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _hardware() -> dict[str, str]:
    """This machine as slurmd sees it (`slurmd -C`): CPUs, Boards, SocketsPerBoard, ..., RealMemory."""
    line = subprocess.run([_daemon("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout.splitlines()[0]
    fields = dict(token.split("=", 1) for token in line.split())
    fields.pop("NodeName")
    return fields


def _daemon(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """munged + slurmctld + slurmd in the foreground, configured under `root`; `env` points clients at them."""

    def __init__(self, root: Path, gpus: int = 1):
        self.root = Path(root)
        self.gpus = gpus
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: list[subprocess.Popen] = []
        self.linked_system_conf = False
        self.started_in_s = None
        self.stopped_in_s = None

    # ---- configuration -----------------------------------------------------------------------------------------
    def _write_config(self):
        root = self.root
        for sub in ("state", "spool", "munge"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(root / "munge", 0o755)  # munged wants its socket directory reachable by all
        key = root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        gres = f" Gres=gpu:{self.gpus}" if self.gpus else ""
        hardware = " ".join(f"{key}={value}" for key, value in _hardware().items())
        self.conf.write_text(
            "\n".join(
                [
                    f"ClusterName={CLUSTER_NAME}",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'slurmd.log'}",
                    # no cgroups in a container: track job processes by parent pid, bind nothing
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "JobCompType=jobcomp/none",
                    "MpiDefault=none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "MinJobAge=3600",  # finished jobs stay in squeue for the plugin's squeue status mode
                    "ReturnToService=2",
                    "SlurmdParameters=config_overrides",  # the paper GPU below is taken as configured
                    "GresTypes=gpu",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 {hardware}{gres} State=UNKNOWN",
                    f"PartitionName=main Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        gres_lines = [f"NodeName={self.host} Name=gpu File=/dev/null Count={self.gpus}"] if self.gpus else []
        (root / "gres.conf").write_text("\n".join(["AutoDetect=off", *gres_lines, ""]))
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(self.conf)
        self.linked_system_conf = True

    # ---- processes ---------------------------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str):
        log = open(self.root / f"{name}.out", "w")
        process = subprocess.Popen(
            [_daemon(name), *args], stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        self.processes.append(process)
        return process

    def _wait_for(self, what: str, ready, timeout_s: float = 60):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{Path(process.args[0]).name} exited while waiting for {what}:\n{self.logs()}")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"SLURM test cluster: timed out waiting for {what}:\n{self.logs()}")

    def _node_idle(self) -> bool:
        result = self.run("sinfo", "--noheader", "--format=%t", check=False)
        return result.returncode == 0 and result.stdout.strip() in {"idle", "mix", "alloc"}

    def start(self):
        reason = missing_requirements()
        if reason:
            raise RuntimeError(reason)
        began = time.monotonic()
        self._write_config()
        munge = self.root / "munge"
        self._spawn(
            "munged",
            "--foreground",
            "--force",
            f"--socket={munge / 'munge.socket'}",
            f"--key-file={munge / 'munge.key'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--seed-file={munge / 'munged.seed'}",
            f"--log-file={munge / 'munged.log'}",
        )
        self._wait_for("munged's socket", (munge / "munge.socket").exists)
        self._spawn("slurmctld", "-D", "-i", "-f", str(self.conf))
        self._wait_for("slurmctld", lambda: self.run("scontrol", "ping", check=False).stdout.count("UP") > 0)
        self._spawn("slurmd", "-D", "-N", self.host, "-f", str(self.conf))
        self._wait_for(f"node {self.host} to come up", self._node_idle)
        self.started_in_s = time.monotonic() - began
        return self

    def stop(self):
        began = time.monotonic()
        if any(process.poll() is None for process in self.processes):
            self.run("scancel", "--full", f"--nodelist={self.host}", check=False)
        for process in reversed(self.processes):  # slurmd, slurmctld, then munged
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self._kill_leftover_job_processes()
        if self.linked_system_conf and SYSTEM_CONF.is_symlink() and SYSTEM_CONF.resolve() == self.conf.resolve():
            SYSTEM_CONF.unlink()
        self.linked_system_conf = False
        self.processes = []
        self.stopped_in_s = time.monotonic() - began

    def _kill_leftover_job_processes(self):
        """slurmstepd runs each job outside slurmd's process group, and a job's process can leave slurmstepd's tree;
        none may outlive the cluster."""
        for _ in range(50):
            pids = self.leftover_pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def leftover_pids(self) -> list[int]:
        """Processes of this cluster still running: its daemons, the slurmstepd of its jobs, and every process a job
        started, found by the job id in its environment, since proctrack/linuxproc loses one that leaves the job's
        process tree (a job's Snakemake was seen orphaned and hung after a Ctrl-C'd run)."""
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                environ = set((proc / "environ").read_bytes().split(b"\0"))
            except OSError:
                continue
            daemon = any(Path(command.split(" ")[0]).name == name for name in DAEMONS)
            job = CLUSTER_NAME_ENV in environ and any(item.startswith(b"SLURM_JOB_ID=") for item in environ)
            if (daemon and str(self.root) in command) or command.startswith("slurmstepd") or job:
                pids.append(int(proc.name))
        return pids

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc):
        self.stop()

    # ---- clients -----------------------------------------------------------------------------------------------
    def run(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=60)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
        return result

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld knows (finished ones too, for an hour), as `scontrol show job` key=value fields."""
        out = self.run("scontrol", "--oneliner", "show", "job").stdout
        jobs = []
        for line in out.splitlines():
            if not line.startswith("JobId="):
                continue
            fields, key = {}, None
            for token in line.split(" "):
                if "=" in token and not token.startswith("="):
                    key, value = token.split("=", 1)
                    fields[key] = value
                elif key:  # a value with spaces (Reason, Command, Comment)
                    fields[key] += " " + token
            jobs.append({key: value.strip() for key, value in fields.items()})
        return jobs

    def logs(self) -> str:
        parts = []
        for name in ("munge/munged.log", "slurmctld.log", "slurmd.log", *(f"{d}.out" for d in DAEMONS)):
            path = self.root / name
            if path.exists():
                parts.append(f"--- {name} ---\n" + "\n".join(path.read_text(errors="replace").splitlines()[-30:]))
        return "\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--dir", type=Path, help="where the cluster keeps its config, state and logs (default: a temp dir)"
    )
    parser.add_argument("--gpus", type=int, default=1, help="GPUs the node claims (gres without devices)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run against the cluster")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    root = args.dir or Path(tempfile.mkdtemp(prefix="slurm-cluster-"))
    reason = missing_requirements()
    if reason:
        print(f"cannot start the SLURM test cluster: {reason}", file=sys.stderr)
        return 2
    with SlurmCluster(root, gpus=args.gpus) as cluster:
        print(f"SLURM test cluster up in {cluster.started_in_s:.1f} s: export SLURM_CONF={cluster.conf}", flush=True)
        print(cluster.run("sinfo").stdout, flush=True)
        if command:
            code = subprocess.run(command, env=cluster.env).returncode
        else:
            print("Ctrl-C stops it.", flush=True)
            code = 0
            try:
                signal.pause()
            except KeyboardInterrupt:
                pass
    print(f"SLURM test cluster stopped in {cluster.stopped_in_s:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
