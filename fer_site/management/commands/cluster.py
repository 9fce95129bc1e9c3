"""Run Attune as a cluster on one machine: N daphne processes, a Celery worker with beat, nginx in front."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.loader import render_to_string

NGINX_CANDIDATES = ("nginx", "/usr/sbin/nginx")


def nginx_binary() -> str | None:
    """Return the path of nginx, or None when it is not installed."""
    for candidate in NGINX_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def nginx_config(*, host: str, port: int, web_ports: list[int], run_dir: Path) -> str:
    """Return the nginx configuration balancing HTTP and WebSockets across ``web_ports``."""
    return render_to_string(
        "cluster/nginx.conf",
        {
            "host": host,
            "port": port,
            "web_ports": web_ports,
            "workers": len(web_ports),
            "run_dir": run_dir,
            "max_body_bytes": settings.DATA_UPLOAD_MAX_MEMORY_SIZE,
        },
    )


class Command(BaseCommand):
    help = (
        "Serve through nginx on HOST:PORT with --workers daphne processes behind it, and a Celery worker "
        "with beat, all sharing REDIS_URL and DATABASE_URL; Ctrl-C stops them all."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="Web (daphne) processes.")
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--web-port", type=int, default=0, help="Port of the first web process (default: PORT + 1)."
        )
        parser.add_argument("--no-worker", action="store_true", help="Start no Celery worker.")

    def handle(self, *args, **options) -> None:
        workers = options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1")
        missing = [name for name in ("REDIS_URL", "DATABASE_URL") if not os.environ.get(name)]
        if missing or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
            raise CommandError(
                "A cluster shares one Redis and one PostgreSQL between its processes: set REDIS_URL and "
                f"DATABASE_URL=postgres://... (missing: {', '.join(missing) or 'a PostgreSQL DATABASE_URL'})."
            )
        nginx = nginx_binary()
        if nginx is None:
            raise CommandError("nginx is not installed (apt-get install nginx).")

        first = options["web_port"] or options["port"] + 1
        web_ports = [first + i for i in range(workers)]
        run_dir = Path(settings.VAR_DIR) / "cluster" / str(options["port"])
        run_dir.mkdir(parents=True, exist_ok=True)
        config = run_dir / "nginx.conf"
        config.write_text(
            nginx_config(host=options["host"], port=options["port"], web_ports=web_ports, run_dir=run_dir)
        )

        python, manage = sys.executable, str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            f"web{index}": [python, manage, "serve", "--host", "127.0.0.1", "--port", str(web_port),
                            "--proxy-headers"]
            for index, web_port in enumerate(web_ports, start=1)
        }  # fmt: skip
        if not options["no_worker"]:
            commands["worker"] = [
                python, "-m", "celery", "-A", "fer_site", "worker", "-Q", "default,training",
                "--concurrency", "1", "--loglevel", "INFO", "--beat",
                "--schedule", str(run_dir / "celerybeat-schedule"),
                "--hostname", f"attune-{options['port']}@%h",
            ]  # fmt: skip
        commands["proxy"] = [nginx, "-c", str(config), "-p", f"{run_dir}/", "-e", "stderr"]
        self.stdout.write(
            f"Attune cluster: http://{options['host']}:{options['port']}/ through nginx ({config}), "
            f"{workers} web process{'es' if workers > 1 else ''} on {', '.join(map(str, web_ports))}"
        )
        sys.exit(Supervisor(commands, restart=[name for name in commands if name.startswith("web")]).run())


class Supervisor:
    """Run named commands with prefixed output; restart those in ``restart`` when they die.

    Unlike honcho, which stops every process when one exits, a cluster keeps serving when one web
    process dies: nginx sends its visitors to the others while it restarts.
    """

    def __init__(self, commands: dict[str, list[str]], *, restart: list[str], restart_after_s: float = 2.0):
        self.commands = commands
        self.restart = set(restart)
        self.restart_after_s = restart_after_s
        self.processes: dict[str, subprocess.Popen] = {}
        self.stopping = threading.Event()
        self.width = max(map(len, commands))

    def run(self) -> int:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        for name in self.commands:
            self.start(name)
        died: dict[str, float] = {}
        while not self.stopping.wait(0.5):
            for name, process in list(self.processes.items()):
                if process.poll() is None:
                    continue
                if name not in self.restart:
                    self.say(name, f"exited with {process.returncode}: stopping the cluster")
                    self.stopping.set()
                    break
                if name not in died:
                    self.say(
                        name, f"exited with {process.returncode}: restarting in {self.restart_after_s:g} s"
                    )
                    died[name] = time.monotonic() + self.restart_after_s
                elif time.monotonic() >= died[name]:
                    del died[name]
                    self.start(name)
        return self.stop()

    def start(self, name: str) -> None:
        process = subprocess.Popen(
            self.commands[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        self.processes[name] = process
        threading.Thread(target=self.relay, args=(name, process), daemon=True).start()
        self.say(name, f"started (pid {process.pid})")

    def relay(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(name, line.rstrip("\n"))

    def say(self, name: str, line: str) -> None:
        sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {line}\n")
        sys.stdout.flush()

    def stop(self) -> int:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 20
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
        return 0
