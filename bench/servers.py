"""Private redis-server processes for the benchmark (free 127.0.0.1 ports,
stopped by pid), and what the report says about the machine and server."""

from settings import *  # noqa: F401,F403 (the bench's settings and imports)

# --------------------------------------------------------------------------
# servers


class Stop(Exception):
    pass


def _on_signal(signum, _frame):
    raise Stop(f"signal {signum}")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


LIVE = []  # every Server constructed, stopped in main()'s finally even if start failed


class Server:
    def __init__(self, name, aof, modules):
        LIVE.append(self)
        self.name = name
        self.aof = aof
        self.dir = tempfile.mkdtemp(prefix=f"rl-bench-{name}-")
        self.proc = None
        for _attempt in range(5):
            self.port = free_port()
            argv = [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", self.dir, "--logfile", "redis.log", "--daemonize", "no",
                "--save", "", "--appendonly", "yes" if aof else "no",
                "--appendfsync", "everysec",
                # rewrites are done between rounds (BGREWRITEAOF), not during runs
                "--auto-aof-rewrite-percentage", "0",
            ]
            for m in modules:
                argv += ["--loadmodule", m]
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, start_new_session=True,
            )
            self.r = redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True)
            if self._wait_ready():
                return
            self.stop(keep_dir=True)
        raise RuntimeError(f"redis-server {name} did not start:\n{self.log_tail()}")

    def _wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.r.ping():
                    return True
            except redis.ConnectionError:
                time.sleep(0.05)
        return False

    def log_tail(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return "".join(f.readlines()[-20:])
        except OSError:
            return "(no log)"

    def stop(self, keep_dir=False):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # by pid: SIGTERM to this redis-server only
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if not keep_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def rewrite_aof(self):
        """Compacts the AOF between rounds so that no rewrite runs during a run."""
        if not self.aof:
            return
        while self.r.info("persistence")["aof_rewrite_in_progress"]:
            time.sleep(0.05)
        self.r.bgrewriteaof()
        time.sleep(0.05)
        while True:
            p = self.r.info("persistence")
            if not p["aof_rewrite_in_progress"] and not p["aof_rewrite_scheduled"]:
                break
            time.sleep(0.05)


def environment():
    def sh(cmd):
        try:
            return subprocess.run(cmd, shell=True, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:  # noqa: BLE001
            return "?"
    lscpu = sh("lscpu | grep -E '^(Model name|CPU\\(s\\)|Thread|Core|Hypervisor)'")
    return {
        "date (UTC)": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "nproc": sh("nproc"),
        "cpu": "; ".join(" ".join(line.split()) for line in lscpu.splitlines()),
        "memory": sh("free -g | awk '/Mem:/{print $2\" GiB\"}'"),
        "kernel": platform.release(),
        "redis-server": sh(f"{REDIS_SERVER} --version"),
        "server": server_label(),
        "redis-benchmark": sh(f"{REDIS_BENCHMARK} --version"),
        "python": platform.python_version(),
        "limits": limits.__version__,
        "redis-py": redis.__version__,
        "module": f"{MODULE} (built {time.strftime('%Y-%m-%d %H:%M', time.gmtime(os.path.getmtime(MODULE)))} UTC)",
        "git": sh(f"git -C {ROOT} describe --always --dirty"),
        "redis-cell": CELL or "not set (REDIS_CELL_MODULE), CL.THROTTLE not measured",
        "floor module": FLOOR if os.path.exists(FLOOR) else "not built, FLOOR.HIT not measured",
        "load average at start": sh("cut -d' ' -f1-3 /proc/loadavg"),
    }


def server_label():
    """'Valkey 9.1.2', 'Redis 7.0.15': from the binary's --version line."""
    try:
        line = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True,
                              timeout=10).stdout
    except OSError:
        return REDIS_SERVER
    m = re.match(r"(\w+) server v=(\S+)", line)
    return f"{m.group(1)} {m.group(2)}" if m else line.strip()


# --------------------------------------------------------------------------


def log(msg):
    print(msg, file=sys.stderr, flush=True)
