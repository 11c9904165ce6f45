"""Render the served /docs page in headless Chromium through chromedriver and save a screenshot.

Used by .ci/server.sh inside a network namespace (only loopback reachable). Talks the W3C WebDriver
protocol with the standard library only, and waits until RapiDoc has rendered the document (its
shadow root lists the operations), instead of guessing a delay: `chromium --screenshot` shoots at
the load event, before RapiDoc has fetched the document, and `--virtual-time-budget` hangs in
Chromium 156.

usage: docs_shot.py URL OUT.png [DRIVER_PORT]
"""

import base64
import sys
import time
import urllib.error

from webdriver import Browser, say

url, out = sys.argv[1], sys.argv[2]
port = int(sys.argv[3]) if len(sys.argv) > 3 else 9515

with Browser(port) as browser:
    call, session = browser.call, browser.s.removeprefix("/session/")
    say(f"session {session}; loading {url}")
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
