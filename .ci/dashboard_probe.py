"""Drive the dashboard page (`/`) in headless Chromium through chromedriver, as a user would.

Used by .ci/server.sh inside a network namespace (only loopback reachable), over a server holding the
demo tenant. It:
  1. opens /?organization=ORG, checks the first focus is the email box and that Tab moves to the
     password box, types the credentials and submits with Enter (the keyboard path, no click);
  2. waits for the funnel, reads the numbers the page shows (stage, now, reached, dropped,
     conversion) and compares them with GET /api/v1/analytics/funnel fetched with the same user's
     token (taken from the page's sessionStorage): any difference fails;
  3. applies a filter with Enter and compares the funnel with the API's for that filter, then a bad
     filter, whose problem must be shown next to the box;
  4. fails on any Content-Security-Policy violation or script error the browser logged;
  5. saves a screenshot at 1280 x 900 (OUT-wide.png), then sets a phone-sized window (375 x 812),
     checks the page does not scroll sideways, and saves a screenshot (OUT.png);
  6. uploads an HTML page and an SVG, each with a script, as attachments of a new contact
     (POST /api/v1/contacts/{id}/attachments) and opens GET /api/v1/attachments/{id}/content in the
     browser with the user's token: neither may render (no script runs, the document's text is not
     shown). The same detector first opens the same bytes served inline from a loopback server of
     its own, where both must be seen rendering: so the check is shown able to fail on every run.
Talks the W3C WebDriver protocol with the standard library only (.ci/webdriver.py, shared with
docs_shot.py).

usage: dashboard_probe.py BASE_URL ORG EMAIL PASSWORD OUT.png [DRIVER_PORT]
"""

import base64
import http.server
import json
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from webdriver import Browser, say

base, org, email, password, out = sys.argv[1:6]
port = int(sys.argv[6]) if len(sys.argv) > 6 else 9516
ENTER, TAB = "\ue007", "\ue004"


def api(path, token):
    req = urllib.request.Request(base + path, headers={"authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def fail(why):
    sys.exit(f"dashboard probe: {why}")


# An HTML page and an SVG, each with a script that marks the page and visible text: a rendering is
# seen as the marker (the script ran) or the text (the document is shown).
MARK = "crm-probe-rendered"
HOSTILE = {
    "page.html": (b"<!doctype html><html><head><title>probe</title></head><body><h1>" + MARK.encode()
                  + b"</h1><script>document.title = 'script ran'; window.name = 'script ran';</script>"
                  b"</body></html>", "text/html"),
    "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="80"><text x="10" y="40">'
                    + MARK.encode() + b"</text><script>document.title = 'script ran'; "
                    b"window.name = 'script ran';</script></svg>", "image/svg+xml"),
}
SEEN = """
  const text = document.documentElement ? document.documentElement.textContent || '' : '';
  return {href: location.href, title: document.title, name: window.name,
          shown: text.includes(arguments[0])};"""


def opened(browser, url):
    """Opens `url` in the browser from a blank page; what the page then is."""
    browser.call("POST", f"{browser.s}/url", {"url": "about:blank"})
    browser.run("window.name = ''")
    try:
        browser.call("POST", f"{browser.s}/url", {"url": url})
    except urllib.error.HTTPError as e:
        say(f"navigating to {url}: {e.code} (a download is refused as a navigation by some drivers)")
    time.sleep(1.0)  # a script in a rendered page runs at load; give a download time to settle too
    return browser.run(SEEN, MARK)


def rendered(seen):
    return seen["shown"] or "script ran" in (seen["title"], seen["name"])


def multipart(fields, file_name, content):
    boundary = uuid.uuid4().hex
    body = b""
    for k, v in fields.items():
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
    body += (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
             f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def post(path, token, body, content_type):
    req = urllib.request.Request(base + path, data=body, method="POST",
                                 headers={"authorization": f"Bearer {token}", "content-type": content_type})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


class Inline(http.server.BaseHTTPRequestHandler):
    """The control: the same bytes served inline as what they are, as a careless server would."""

    def do_GET(self):
        if self.path.lstrip("/") not in HOSTILE:  # the browser's /favicon.ico
            self.send_error(404)
            return
        content, media_type = HOSTILE[self.path.lstrip("/")]
        self.send_response(200)
        self.send_header("content-type", media_type)
        self.send_header("content-length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args):
        pass


def uploads_never_render(browser, token):
    # The control first: served inline, both must be seen rendering, or the detector is blind.
    control = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Inline)
    threading.Thread(target=control.serve_forever, daemon=True).start()
    try:
        for name in HOSTILE:
            seen = opened(browser, f"http://127.0.0.1:{control.server_address[1]}/{name}")
            if not rendered(seen):
                fail(f"the control: {name} served inline was not seen rendering ({seen}); the check is blind")
        print("attachments: the control (the same files served inline) is seen rendering, both")
    finally:
        control.shutdown()

    contact = post("/api/v1/contacts", token, json.dumps({"first_name": "Probe"}).encode(), "application/json")
    # The API's requests carry the token as the page's script would; downloads are refused, not saved.
    browser.cdp("Network.enable")
    browser.cdp("Network.setExtraHTTPHeaders", {"headers": {"authorization": f"Bearer {token}"}})
    browser.cdp("Browser.setDownloadBehavior", {"behavior": "deny"})
    try:
        for name, (content, _) in HOSTILE.items():
            body, ctype = multipart({"kind": "document"}, name, content)
            att = post(f"/api/v1/contacts/{contact['id']}/attachments", token, body, ctype)
            url = f"{base}/api/v1/attachments/{att['id']}/content"
            req = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
            with urllib.request.urlopen(req, timeout=60) as resp:
                headers = {k.lower(): v for k, v in resp.headers.items()}
                if resp.read() != content:
                    fail(f"{name}: the download is not the uploaded bytes")
            served = headers.get("content-type", "")
            if not headers.get("content-disposition", "").startswith("attachment"):
                fail(f"{name} is served without Content-Disposition: attachment ({headers})")
            if headers.get("x-content-type-options") != "nosniff" or "html" in served or "svg" in served:
                fail(f"{name} is served as {served!r} without nosniff or as a renderable type")
            seen = opened(browser, url)
            if rendered(seen):
                fail(f"{name} ({att['media_type']}) rendered at {url}: {seen}")
            print(f"attachments: {name} ({att['media_type']}) is served as {served}, attachment, nosniff; "
                  f"Chromium did not render it (page at {seen['href']!r}, no script ran)")
    finally:
        browser.cdp("Network.setExtraHTTPHeaders", {"headers": {}})


with Browser(port, logging=True) as browser:
    call, s = browser.call, browser.s

    def run(script, *args):
        try:
            return browser.run(script, *args)
        except TimeoutError:
            fail("the page did not answer scripts")

    def element(css):
        found = call("POST", f"{s}/element", {"using": "css selector", "value": css})
        return next(iter(found.values()))

    def keys(css, text):
        call("POST", f"{s}/element/{element(css)}/value", {"text": text})

    def wait_for(script, what, seconds=180):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = run(script)
            if value:
                return value
            time.sleep(0.2)
        fail(f"timed out waiting for {what}")

    FUNNEL_READY = """
      const f = document.getElementById('funnel');
      return f && f.getAttribute('aria-busy') === 'false' ? f.dataset.total ?? 'failed' : null;"""
    # The page's funnel table: one object per row, the cells as the page shows them.
    READ_FUNNEL = """
      return [...document.querySelectorAll('#funnel tbody tr')].map(tr => {
        const o = {stage: tr.dataset.stage};
        for (const c of tr.querySelectorAll('[data-field]')) o[c.dataset.field] = c.textContent;
        return o;
      });"""

    def compare(rows, total, answer, what):
        """The page's numbers against the API's answer."""
        if total != str(answer["total"]):
            fail(f"{what}: the page says {total} leads, the API {answer['total']}")
        if len(rows) != len(answer["steps"]):
            fail(f"{what}: the page shows {len(rows)} stages, the API {len(answer['steps'])}")
        for row, step in zip(rows, answer["steps"]):
            conv = step["conversion_percent"]
            want = {"stage": step["stage"], "label": step["label"], "current": step["current"],
                    "reached": step["reached"], "drop_off": step["drop_off"],
                    "conversion_percent": "–" if conv is None else f"{conv}%"}
            got = dict(row)
            for k in ("current", "reached", "drop_off"):
                got[k] = int(got[k].replace(",", ""))
            got.pop("current_value", None)
            if got != want:
                fail(f"{what}: the page shows {got}, the API answers {want}")

    say(f"loading {base}/?organization=…")
    call("POST", f"{s}/url", {"url": f"{base}/?organization={urllib.parse.quote(org)}"})
    # The keyboard path: the organization is filled from the address, so focus starts on the
    # email box; Tab moves to the password; Enter in the password box submits the form.
    wait_for("return document.readyState === 'complete' && document.activeElement && document.activeElement.id",
             "the page to load")
    first = run("return document.activeElement.id")
    if first != "email":
        fail(f"the first focus is on #{first}, not the email box")
    keys("#email", email + TAB)
    if run("return document.activeElement.id") != "password":
        fail("Tab from the email box did not move to the password box")
    keys("#password", password + ENTER)
    total = wait_for(FUNNEL_READY, "the funnel after signing in with Enter")
    if total == "failed":
        fail("the funnel did not load: " + run("return document.getElementById('q-error').textContent"))
    token = run("return JSON.parse(sessionStorage.getItem('crm.session')).access")
    cookies = call("GET", f"{s}/cookie")
    if cookies:
        fail(f"the page set cookies: {cookies}")
    rows = run(READ_FUNNEL)
    compare(rows, total, api("/api/v1/analytics/funnel", token), "funnel")
    say(f"funnel: {len(rows)} stages, {total} leads, as the API answers")
    print(f"dashboard: funnel of {total} leads in {len(rows)} stages matches GET /api/v1/analytics/funnel")
    for section in ("forecast", "productivity", "geo"):
        wait_for(f"return document.getElementById('{section}').getAttribute('aria-busy') === 'false'", section)
    drawn = run("return [...document.querySelectorAll('#geo svg rect[data-records]')].length")
    geo = api("/api/v1/analytics/geo", token)
    if drawn != len(geo["features"]):
        fail(f"the map draws {drawn} cells, the geo report has {len(geo['features'])}")

    # A filter, applied with Enter, gives the API's numbers for that filter.
    q = "source:referral"
    run("document.getElementById('funnel').setAttribute('aria-busy', 'pending')")
    keys("#q", q + ENTER)
    total = wait_for(FUNNEL_READY, "the filtered funnel")
    want = api("/api/v1/analytics/funnel?q=" + urllib.parse.quote(q), token)
    compare(run(READ_FUNNEL), total, want, f"funnel for {q}")
    print(f"dashboard: funnel for {q!r} ({total} leads) matches the API")
    # A bad filter: the API's problem is shown next to the box.
    run("document.getElementById('q').value = ''")
    keys("#q", "score>=" + ENTER)
    error = wait_for("return document.getElementById('q-error').textContent", "the filter's error")
    if "funnel" not in error or "invalid query" not in error:
        fail(f"the bad filter's error reads {error!r}")
    if run("return document.getElementById('q').getAttribute('aria-invalid')") != "true":
        fail("the filter box is not marked invalid")
    print(f"dashboard: a bad filter shows {error[:80]!r}")
    run("document.getElementById('q').value = ''")
    run("document.getElementById('funnel').setAttribute('aria-busy', 'pending')")
    keys("#q", ENTER)
    wait_for(FUNNEL_READY, "the unfiltered funnel")
    wait_for("return document.getElementById('status').textContent.startsWith('Reports updated')",
             "every report, unfiltered")

    # The browser's log: a CSP violation or a script error fails the probe.
    try:
        log = call("POST", f"{s}/se/log", {"type": "browser"})
    except urllib.error.HTTPError as e:
        log = None
        say(f"the browser log is not available from this chromedriver ({e.code}); not checked")
    if log is not None:
        bad = [e["message"] for e in log if e.get("level") == "SEVERE"
               or "Content Security Policy" in e.get("message", "")]
        # The bad filter's 400 answers are logged by Chromium as failed loads: expected. So is
        # the browser's own request for /favicon.ico, which the page does not name.
        bad = [m for m in bad if "400 (Bad Request)" not in m and "/favicon.ico " not in m]
        if bad:
            fail("the browser logged: " + " | ".join(bad))
        print(f"dashboard: browser log clean ({len(log)} entries)")

    # The desktop picture (kept beside the phone one), then a phone-sized window: no sideways
    # scrolling, and the picture.
    with open(out.removesuffix(".png") + "-wide.png", "wb") as f:
        f.write(base64.b64decode(call("GET", f"{s}/screenshot")))
    call("POST", f"{s}/window/rect", {"width": 375, "height": 812})
    time.sleep(0.5)
    width = run("return [document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1]:
        fail(f"at {width[1]} px wide the page is {width[0]} px wide (scrolls sideways)")
    run("window.scrollTo(0, 0)")
    time.sleep(0.3)
    png = call("GET", f"{s}/screenshot")
    with open(out, "wb") as f:
        f.write(base64.b64decode(png))
    print(f"dashboard: {width[1]} px wide without sideways scrolling; screenshot saved")

    uploads_never_render(browser, token)
