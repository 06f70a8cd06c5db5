"""Start and stop a throw-away JupyterLab server for the browser tests, on loopback only.

``LabServer`` runs ``python -m jupyterlab`` from the test's own interpreter (so the kernel and the
ipywidgets front-end extension in ``<venv>/share/jupyter/labextensions`` are the venv's), with

* ``127.0.0.1``, a free port and a random token; no browser, no terminals;
* fresh temporary config, data, runtime, settings and workspace folders, so nothing from the user's
  ``~/.jupyter`` leaks in and nothing is written there (the venv's data path stays visible: Jupyter
  always searches ``sys.prefix/share/jupyter``);
* no network: the news feed and the update check are switched off, the extension manager is
  read-only;
* ``window.jupyterapp`` exposed, so a test can run JupyterLab commands (``notebook:run-all-cells``);
* extra environment variables (``DELTAZ_SMOKE=1``) that the kernels inherit.

The server runs in its own process group. ``stop()`` asks it to shut down (which stops its kernels),
then kills the group and every process it had started (kernels run in their own sessions), so no
process is left behind even when a test fails. Every wait is bounded.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def descendants(pid: int) -> list[int]:
    """PIDs of every live descendant of ``pid`` (children, grandchildren, ...), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Field 4 (ppid) follows the command name, which is in parentheses and may contain spaces.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie counts as gone: it holds no resources and its parent will reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


USER_SETTINGS = {
    "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
    "@jupyterlab/apputils-extension/notification": {
        "fetchNews": "false",
        "checkForUpdates": False,
        "doNotDisturbMode": True,
    },
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


class LabServer:
    """One JupyterLab server serving ``root_dir``; use as a context manager or call start()/stop().

    Args:
        root_dir: folder JupyterLab serves (and the kernels' working directory for notebooks in it).
        env: extra environment variables for the server and, through it, its kernels.
        startup_timeout_s: how long to wait for ``/api/status`` to answer.
    """

    def __init__(self, root_dir: Path, env: dict[str, str] | None = None, startup_timeout_s: float = 60.0):
        self.root_dir = Path(root_dir)
        self.extra_env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self.port = free_port()
        self.token = secrets.token_hex(24)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="deltaz-lab-")
        self.log_path = Path(self._tmp.name) / "jupyterlab.log"
        self._log_file = None
        self._started_pids: set[int] = set()

    # -- URLs ---------------------------------------------------------------------------------------
    def url(self, path: str) -> str:
        """Absolute URL of ``path`` (e.g. ``lab/tree/x.ipynb``) with the token as a query argument."""
        sep = "&" if "?" in path else "?"
        return f"{self.base_url}/{path.lstrip('/')}{sep}token={self.token}"

    def api(self, path: str, timeout_s: float = 5.0):
        """GET ``/api/<path>`` with the token; returns the decoded JSON."""
        request = urllib.request.Request(
            f"{self.base_url}/api/{path.lstrip('/')}", headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())

    # -- lifecycle ----------------------------------------------------------------------------------
    def _write_config(self, tmp: Path) -> list[str]:
        config_dir = tmp / "config"
        config_dir.mkdir()
        config = {
            "ServerApp": {"terminals_enabled": False},
            "LabApp": {
                "news_url": None,
                "check_for_updates_class": "jupyterlab.NeverCheckForUpdate",
                "extension_manager": "readonly",
                "expose_app_in_browser": True,
            },
        }
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(config))
        # User settings: no autosave (the test never writes notebooks back), no news question or
        # toasts over the page, and every cell attached to the DOM (no windowing), so the page shows
        # every output the test looks for.
        settings = tmp / "settings"
        for plugin, values in USER_SETTINGS.items():
            path = settings / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        return [
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--no-browser",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
            *(["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []),  # containers, CI
        ]

    def start(self) -> "LabServer":
        """Launch the server and wait (bounded) until ``/api/status`` answers with the token."""
        tmp = Path(self._tmp.name)
        args = self._write_config(tmp)
        env = dict(os.environ)
        env.update(
            {
                "JUPYTER_CONFIG_DIR": str(tmp / "config"),
                "JUPYTER_DATA_DIR": str(tmp / "data"),
                "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
                "JUPYTER_PLATFORM_DIRS": "0",
                "IPYTHONDIR": str(tmp / "ipython"),
                "MPLCONFIGDIR": str(tmp / "matplotlib"),
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        self._log_file = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", *args],
            cwd=self.root_dir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with code {self.process.returncode}:\n{self.log_tail()}")
            try:
                status = self.api("status", timeout_s=2.0)
                if "started" in status:
                    return self
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(
                    f"JupyterLab did not answer /api/status within {self.startup_timeout_s:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.25)

    def remember_children(self) -> None:
        """Note the server's current descendants (kernels), so stop() can kill them if they linger."""
        if self.process is not None and self.process.poll() is None:
            self._started_pids.update(descendants(self.process.pid))

    def stop(self, timeout_s: float = 15.0) -> None:
        """Shut the server and its kernels down; kill whatever is still alive after ``timeout_s``."""
        process = self.process
        if process is not None:
            self.remember_children()
            if process.poll() is None:
                # SIGTERM: jupyter_server shuts its kernels down and exits.
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait(timeout=timeout_s)
            deadline = time.monotonic() + timeout_s
            for pid in sorted(self._started_pids):
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def leftover_pids(self) -> list[int]:
        """PIDs this server started that are still alive (should be empty after stop())."""
        return [pid for pid in sorted(self._started_pids) if _alive(pid)]

    def log_tail(self, n_chars: int = 4000) -> str:
        """The end of the server's log (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "<no log>"

    def cleanup(self) -> None:
        """stop() and delete the temporary folders."""
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()
