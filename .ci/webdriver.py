"""Headless Chromium through chromedriver, over the W3C WebDriver protocol with the standard library
only: the setup that .ci/docs_shot.py and .ci/dashboard_probe.py share (start chromedriver, wait for
it, open a session with the launch flags that work here as root, call it, close both).

    with Browser(port, logging=True) as b:
        b.call("POST", f"{b.s}/url", {"url": url})
        b.run("return document.title")
"""

import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

started = time.monotonic()

# Flags that work as root in a container (see /work/shared/TOOLCHAIN.md, "Browser tests").
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--hide-scrollbars", "--window-size=1280,900"]


def say(what):
    """Progress on stderr, so a slow or stuck step shows where it is."""
    print(f"[{time.monotonic() - started:5.1f} s] {what}", file=sys.stderr, flush=True)


class Browser:
    """chromedriver on `port` with one Chromium session (`s` is the session's path)."""

    def __init__(self, port, logging=False):
        self.driver = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        self.s = None
        try:
            for _ in range(100):
                try:
                    if self.call("GET", "/status")["ready"]:
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            options = {"goog:chromeOptions": {"args": ARGS + [f"--user-data-dir={tempfile.mkdtemp()}"]}}
            if logging:
                options["goog:loggingPrefs"] = {"browser": "ALL"}
            say("chromedriver ready; starting Chromium")
            self.s = "/session/" + self.call("POST", "/session", {"capabilities": {"alwaysMatch": options}})["sessionId"]
        except BaseException:
            self.close()
            raise

    def call(self, method, path, body=None):
        """One WebDriver command; its `value`."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.driver + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as resp:
            return json.load(resp)["value"]

    def run(self, script, *args, tries=5):
        """Runs a script in the page; a call that times out (a busy page) is retried."""
        for _ in range(tries):
            try:
                return self.call("POST", f"{self.s}/execute/sync", {"script": script, "args": list(args)})
            except (TimeoutError, urllib.error.URLError):
                say("script timed out (the page is busy); retrying")
        raise TimeoutError("the page did not answer scripts")

    def cdp(self, cmd, params=None):
        """A Chrome DevTools Protocol command (chromedriver's extension)."""
        return self.call("POST", f"{self.s}/goog/cdp/execute", {"cmd": cmd, "params": params or {}})

    def close(self):
        try:
            if self.s:
                self.call("DELETE", self.s)
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
