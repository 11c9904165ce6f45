"""Render the served /docs page in headless Chromium through chromedriver and save a screenshot.

Used by .ci/server.sh inside a network namespace (only loopback reachable). Talks the W3C WebDriver
protocol with the standard library only, and waits until RapiDoc has rendered the document (its
shadow root lists the operations), instead of guessing a delay: `chromium --screenshot` shoots at
the load event, before RapiDoc has fetched the document, and `--virtual-time-budget` hangs in
Chromium 156.

usage: docs_shot.py URL OUT.png [DRIVER_PORT]
"""

import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

started = time.monotonic()


def say(what):
    """Progress on stderr, so a slow or stuck step shows where it is."""
    print(f"[{time.monotonic() - started:5.1f} s] {what}", file=sys.stderr, flush=True)

url, out = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 9515
driver = f"http://127.0.0.1:{port}"


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(driver + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)["value"]


proc = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            if call("GET", "/status")["ready"]:
                break
        except OSError:
            pass
        time.sleep(0.1)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--hide-scrollbars", "--window-size=1280,900",
            f"--user-data-dir={tempfile.mkdtemp()}"]
    caps = {"capabilities": {"alwaysMatch": {"goog:chromeOptions": {"args": args}}}}
    say("chromedriver ready; starting Chromium")
    session = call("POST", "/session", caps)["sessionId"]
    say(f"session {session}; loading {url}")
    try:
        call("POST", f"/session/{session}/url", {"url": url})
        # RapiDoc renders into its shadow root once it has fetched and parsed the document.
        # The document's title and an operation's summary in it show the document was fetched and read.
        probe = ("const d = document.querySelector('rapi-doc');"
                 "return d && d.shadowRoot ? d.shadowRoot.textContent : '';")
        text = ""
        # A probe waits for the page's main thread, which parsing and laying out a 200-operation
        # document can hold for a minute on a loaded 2-core machine: a probe that times out is
        # retried until the deadline, not taken for a failure.
        deadline = time.monotonic() + 200
        while time.monotonic() < deadline:
            try:
                text = call("POST", f"/session/{session}/execute/sync", {"script": probe, "args": []})
            except (TimeoutError, urllib.error.URLError):
                say("probe timed out (the page is busy); retrying")
                continue
            if "CRM API" in text and "Create an activity" in text:
                break
            time.sleep(0.2)
        say("probe done")
        print(f"/docs: RapiDoc rendered {len(text)} characters of text")
        if not ("CRM API" in text and "Create an activity" in text):
            sys.exit("the reference page did not render the document")
        time.sleep(0.5)  # let the last layout settle before the picture
        png = call("GET", f"/session/{session}/screenshot")
        say("screenshot taken")
        with open(out, "wb") as f:
            f.write(base64.b64decode(png))
    finally:
        call("DELETE", f"/session/{session}")
finally:
    proc.terminate()
    proc.wait(timeout=10)
