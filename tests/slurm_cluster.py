"""A throwaway single-node SLURM (munged, slurmctld, slurmd) on localhost, for the tests.

Everything lives in one scratch directory; the daemons use a private munge socket and a
port base of their own, and :meth:`LocalSlurm.stop` cancels every job and stops every daemon
it started.  Facts behind the settings: ../shared/docs/slurm.md (Debian 12, Slurm 22.05).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]


def ensure_installed() -> str | None:
    """Install Debian's SLURM packages if missing; None when ready, else the reason."""
    if all(shutil.which(c) for c in ("slurmctld", "slurmd", "sbatch", "munged")):
        return None
    if os.geteuid() != 0:
        return "SLURM is not installed and installing it needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"],
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode != 0:
            return f"{' '.join(cmd)} failed: {proc.stderr[-500:]}"
    return None


class LocalSlurm:
    """Start with :meth:`start`, use :meth:`run` for client commands, always :meth:`stop`."""

    def __init__(self, root: Path, cpus: int = 4, port_base: int = 16817):
        self.root = Path(root)
        self.cpus = cpus
        self.port_base = port_base
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}

    def _write_config(self) -> None:
        r = self.root
        for d in ("state", "spool", "log", "munge"):
            (r / d).mkdir(parents=True, exist_ok=True)
        os.chmod(r / "munge", 0o755)
        key = r / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        (r / "slurm.conf").write_text(f"""ClusterName=mlpartest
SlurmctldHost=localhost
SlurmctldPort={self.port_base}
SlurmdPort={self.port_base + 1}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={r}/munge/sock,cred_expire=10
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmdParameters=config_overrides
SchedulerParameters=sched_interval=2,bf_interval=2
MpiDefault=pmix
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={r}/log/jobcomp.txt
MailProg=/bin/true
ReturnToService=2
KillWait=5
MinJobAge=600
NodeName=localhost CPUs={self.cpus} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
""")

    def _daemon(self, cmd: list[str]) -> None:
        log = open(self.root / "log" / f"{Path(cmd[0]).name}.out", "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                           env=self.env, start_new_session=True))

    def start(self, timeout: float = 60.0) -> None:
        r = self.root
        self._write_config()
        self._daemon(["munged", "-F", "-S", str(r / "munge" / "sock"),
                      f"--key-file={r}/munge/munge.key", f"--pid-file={r}/munge/munged.pid",
                      f"--seed-file={r}/munge/seed", f"--log-file={r}/log/munged.log"])
        self._wait(lambda: (r / "munge" / "sock").exists(), timeout, "munged socket")
        self._daemon(["slurmctld", "-D", "-i"])
        self._daemon(["slurmd", "-D", "-N", "localhost"])
        self._wait(lambda: self.run(["sinfo", "-h", "-o", "%T"], check=False).stdout.strip()
                   in ("idle", "mixed", "allocated"), timeout, "an idle node")

    def _wait(self, ready, timeout: float, what: str) -> None:
        t0 = time.monotonic()
        while not ready():
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"a SLURM daemon died while waiting for {what}: "
                                       f"{p.args}; logs in {self.root / 'log'}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"no {what} after {timeout} s; logs in {self.root / 'log'}")
            time.sleep(0.5)

    def run(self, cmd: list[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, capture_output=True, text=True, env=self.env, check=check,
                              timeout=60)

    def job_state(self, job: str) -> dict[str, str]:
        """Fields of ``scontrol show job`` (JobState, Restarts, ExitCode, ...)."""
        out = self.run(["scontrol", "show", "job", job], check=False).stdout
        return dict(kv.split("=", 1) for kv in out.split() if "=" in kv)

    def wait_job(self, job: str, states: set[str], timeout: float) -> dict[str, str]:
        t0 = time.monotonic()
        while True:
            info = self.job_state(job)
            if info.get("JobState") in states:
                return info
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"job {job} still {info.get('JobState')} after {timeout} s")
            time.sleep(1.0)

    def stop(self) -> None:
        """Cancel all jobs, then stop every daemon this object started."""
        self.run(["scancel", "--user=root"], check=False)
        time.sleep(1.0)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs = []
