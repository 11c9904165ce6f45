#!/usr/bin/env python3
"""Every fenced code block of README.md and docs/**/*.md, and who runs it.

    python3 .ci/doc_blocks.py check          # every block has a runner or a stated reason (CI step)
    python3 .ci/doc_blocks.py list           # file:line  language  runner
    python3 .ci/doc_blocks.py shell [FILE..] # run the shell blocks (bash -euo pipefail), file by file
    python3 .ci/doc_blocks.py server         # run the blocks that call a server (CRM_DOC_BASE etc. set)
    python3 .ci/doc_blocks.py kotlin DIR     # write docs/mobile.md's JVM-compiled Kotlin blocks into DIR
    python3 .ci/doc_blocks.py block FILE HEAD  # print FILE's block that starts with HEAD

Runners: ``rust`` blocks are doc tests of crm-server (``cargo test --workspace``); ``python`` blocks
run under pytest against the installed wheel (``bindings/python/tests/test_doc_blocks.py``, from
``.ci/python.sh``); ``js`` blocks under node (``bindings/wasm/js/test/docs.test.mjs``, from
``.ci/wasm.sh``); docs/wasm.md's ``ts`` blocks are type-checked and run in ``bindings/wasm/ts-check``
(``.ci/wasm.sh``); docs/mobile.md's ``kotlin`` blocks picked by ``jvm_kotlin`` compile and run on the
JVM with the mobile tests (``.ci/mobile.sh``, through ``kotlin DIR``); ``json``
blocks are parsed here; shell blocks run here (``shell``). ``text`` blocks are output or diagrams,
not code. A block none of these can run here is in SKIP with the reason; a SKIP entry that matches
no block fails ``check`` (so the list cannot go stale).

The shell blocks of one file run in order in one scratch directory (state carries over, as in a
reader's terminal) that links the checkout's top-level entries, so paths such as
``examples/data/leads.csv`` resolve as in a checkout; ``crm`` on PATH is ``$CRM_BIN`` (e.g. the
release build .ci/run's load benchmark made), else the debug build (``cargo build -p crm-cli`` first).
A failure names the file and the block's line.

Blocks in SERVER call a running server (curl): ``.ci/server.sh`` starts ``crm serve --demo`` and runs
them with ``server``, each in its own bash with ``CRM_DOC_BASE`` (the server's address, which stands
for ``localhost:8080`` in the block), ``ORG``, ``PASSWORD`` (the demo's) and ``TOKEN`` (the demo
admin's) set. A line ``NAME=<what the reader fills in>`` is a placeholder: the runner takes NAME from
its environment instead. ``curl`` fails on any HTTP error (``--fail-with-body``), except that a
``--max-time`` running out (a followed event stream) is the block's intent, not a failure.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^( *)(```+)\s*([^\s`]*)")
SHELL = {"sh", "bash", "console", "shell"}

# (file, text the block's first line starts with) -> why it cannot run here.
SKIP: Dict[Tuple[str, str], str] = {
    ("README.md", "# The main job"): "the CI runs these two itself: .ci/run's steps 'tests: the README's test "
    "command' (cargo test --workspace) and 'the README's main command' (crm demo, with fewer leads and a "
    "debug build: a release build of crm-cli would add minutes to CI)",
    ("README.md", "cargo run --release -p crm-cli -- serve"): "a server in the foreground, signed in with the values "
    "it prints (<org id>, <printed>): .ci/server.sh runs `crm serve --demo` and these calls",
    ("README.md", "cargo run --release -p crm-bench"): "the full-size benchmarks take tens of minutes; .ci/run "
    "smoke-runs both binaries at tiny sizes",
    ("docs/cli.md", "CRM_CRASH_ROUNDS=300"): "300 crash rounds of a release build take minutes; cargo test "
    "--workspace runs the same test with its default rounds",
    ("docs/cli.md", "crm import-members examples/data/pos_clients.csv --dry-run          #"): "the same commands "
    "run from docs/front-desk.md's block; its last line names the reader's own pos.csv",
    ("docs/mobile.md", "bindings/mobile/generate.sh            #"): ".ci/mobile.sh runs generate.sh (mobile "
    "profile); the debug build would add a second build of the library",
    ("docs/mobile.md", "apt-get install -y default-jre-headless"): ".ci/mobile.sh installs the same packages "
    "when missing, and runs generate.sh itself (with its PROFILE)",
    ("docs/mobile.md", "bindings/mobile/android/build-aar.sh --sources"): "run verbatim by .ci/mobile.sh (its "
    "Kotlin step, `doc_blocks.py block`), after generate.sh",
    ("docs/mobile.md", "rustup target add aarch64-linux-android"): "needs the Android NDK, SDK and Gradle (none "
    "on the CI machine); .ci/mobile.sh checks the script's syntax and runs its --sources step",
    ("docs/mobile.md", "rustup target add aarch64-apple-ios"): "needs macOS with Xcode; .ci/mobile.sh checks "
    "the script's syntax and runs its --sources step",
    ("docs/mobile.md", "import CrmMobile"): "Swift: no Swift toolchain in CI (Linux); compiled only in Xcode",
    ("docs/mobile.md", "func syncNow("): "Swift: no Swift toolchain in CI (Linux); compiled only in Xcode",
    ("docs/mobile.md", "val report = crm.upsert("): "a fragment over the reader's open `crm`; the Kotlin test "
    "\"an external scheduler's rows are upserted\" (bindings/mobile/tests/kotlin) makes the same call and checks "
    "the printed row's errors",
    ("docs/mobile.md", "val answer = staff.checkInClient"): "a fragment calling the reader's UI (showGreen, "
    "showAmber, showRed)",
    ("docs/quotes.md", "cargo run --release -p crm-cli -- --database moving.db"): "a release build of crm-cli; "
    "the moving demo runs in crm-cli's tests (cargo test --workspace)",
    ("docs/scaling.md", "crm --database postgres://"): "a server on a PostgreSQL host the guide invents; .ci/run "
    "runs the CLI and the server's tests against PostgreSQL",
    ("docs/scaling.md", "-- on the coordinator"): "needs a Citus cluster",
    ("docs/server.md", "cargo build --release -p crm-cli"): "a release build and a server in the foreground: "
    ".ci/server.sh runs `crm serve --demo` on a fresh file",
    ("docs/wasm.md", "rustup target add wasm32-unknown-unknown"): ".ci/wasm.sh runs these (installs "
    "wasm-bindgen-cli, builds the package)",
    ("docs/wasm.md", "npm pack ./bindings/wasm/pkg"): ".ci/wasm.sh packs the built package and installs the "
    "tarball the same way (into bindings/wasm/ts-check; the guide's my-app is the reader's)",
    ("docs/python.md", "pip install ./bindings/python"): ".ci/python.sh builds the wheel the same way (maturin "
    "build --release) and installs it into a fresh venv; a second build through pip would add minutes",
}

# (file, text the block's first line starts with) -> what it shows; run by `server` against a running
# `crm serve --demo` (.ci/server.sh).
SERVER: Dict[Tuple[str, str], str] = {
    ("docs/server.md", "ORG=<organization id"): "sign in, list, create, update, explain, aggregate, import, export, events",
    ("docs/server.md", "curl -s -i localhost:8080/api/v1/leads -H \"authorization: Bearer $TOKEN\" \\\n  -H 'idem"):
    "a keyed create",
    ("docs/analytics.md", "curl -s -G localhost:8080/api/v1/analytics"): "the reports",
    ("docs/server.md", "curl -s -o /dev/null -D - localhost:8080/ |"): "the dashboard's policy and script",
    ("docs/followups.md", "# Plan a follow-up while logging the call"): "a call that plans a follow-up, the views",
    ("docs/routing.md", "# Who would get this lead?"): "a routing dry run and a re-route",
    ("docs/attachments.md", "# A photo of a new contact's roof"): "an attachment uploaded, listed, downloaded",
    ("docs/integration.md", "# The website's form backend"): "an upsert, the same rows again, create-only",
    ("docs/sync.md", "PAGE=$(curl -s 'localhost:8080/api/v1/sync/pull"): "a pull's first two pages, an empty push",
}

# Languages that are not code to run: output, diagrams.
NOT_CODE = {"text"}


@dataclass
class Block:
    file: str  # relative to ROOT
    line: int  # 1-based line of the opening fence
    lang: str
    text: str

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def markdown_files(root: Path = ROOT) -> List[Path]:
    return [root / "README.md"] + sorted((root / "docs").rglob("*.md"))


def blocks(path: Path, root: Path = ROOT) -> Iterator[Block]:
    """The fenced blocks of a Markdown file, dedented by their fence's indentation."""
    lines = path.read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = len(m.group(1)), m.group(2), m.group(3)
        start, body = i + 1, []
        i += 1
        while i < len(lines) and not (lines[i].strip().startswith(fence) and lines[i].strip().strip("`") == ""):
            body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i])
            i += 1
        i += 1
        lang = info.split(",")[0].lower()
        yield Block(str(path.relative_to(root)), start, lang, "\n".join(body) + "\n")


def all_blocks(root: Path = ROOT) -> List[Block]:
    return [b for f in markdown_files(root) for b in blocks(f, root)]


def skip_reason(b: Block) -> str | None:
    for (file, head), why in SKIP.items():
        if b.file == file and b.text.startswith(head):
            return why
    return None


def server_block(b: Block) -> bool:
    return any(b.file == file and b.text.startswith(head) for (file, head) in SERVER)


def jvm_kotlin(b: Block) -> bool:
    """docs/mobile.md's Kotlin blocks that .ci/mobile.sh compiles and its tests call (`kotlin DIR`)."""
    return b.lang == "kotlin" and b.file == "docs/mobile.md" and (
        "fun estimateMove" in b.text
        or "class CrmRepository" in b.text
        or "fun uploadAttachments" in b.text
        or "fun syncNow" in b.text
    )


def runner(b: Block) -> str:
    if server_block(b):
        return "curl against crm serve --demo (doc_blocks.py server, from .ci/server.sh)"
    why = skip_reason(b)
    if why:
        return "skipped: " + why
    if b.lang in NOT_CODE:
        return "not code"
    if b.lang in ("rust", ""):
        return "doc test (cargo test -p crm-server --doc)"
    if b.lang == "python":
        return "pytest (bindings/python/tests/test_doc_blocks.py)"
    if b.lang in ("js", "javascript"):
        return "node (bindings/wasm/js/test/docs.test.mjs)"
    if jvm_kotlin(b):
        return "JVM (.ci/mobile.sh: compiled with the Kotlin tests, which call it)"
    if b.lang in ("ts", "typescript") and b.file == "docs/wasm.md":
        return "tsc --strict, then node (bindings/wasm/ts-check/docs.mjs, from .ci/wasm.sh)"
    if b.lang == "json":
        return "parsed (doc_blocks.py check)"
    if b.lang in SHELL:
        return "bash (doc_blocks.py shell)"
    return ""


def check() -> int:
    bad = []
    found = all_blocks()
    for b in found:
        r = runner(b)
        if not r:
            bad.append(f"{b.where}: a ```{b.lang} block nothing runs: run it, or add it to SKIP with the reason")
        if b.lang == "json" and not r.startswith("skipped"):
            try:
                json.loads(b.text)
            except ValueError as e:
                bad.append(f"{b.where}: invalid JSON: {e}")
    for name, table in (("SKIP", SKIP), ("SERVER", SERVER)):
        for (file, head) in table:
            if not any(b.file == file and b.text.startswith(head) for b in found):
                bad.append(f"{name} entry matches no block (stale): {file}: {head!r}")
    for line in bad:
        print(line, file=sys.stderr)
    print(f"{len(found)} blocks in {len(markdown_files())} files; {len(bad)} problems")
    return 1 if bad else 0


def shell(files: List[str]) -> int:
    crm = os.environ.get("CRM_BIN")
    if crm:
        crm_path = Path(crm).resolve()
    else:
        subprocess.run(["cargo", "build", "-q", "-p", "crm-cli"], cwd=ROOT, check=True)
        crm_path = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve() / "debug" / "crm"
    if not os.access(crm_path, os.X_OK):
        print(f"no crm binary at {crm_path}", file=sys.stderr)
        return 1
    bin_dir = Path(tempfile.mkdtemp(prefix="crm-doc-bin-"))
    (bin_dir / "crm").symlink_to(crm_path)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    chosen = [ROOT / f for f in files] if files else markdown_files()
    failed, ran, skipped = [], 0, 0
    for path in chosen:
        todo = [b for b in blocks(path) if b.lang in SHELL]
        if not todo:
            continue
        scratch = Path(tempfile.mkdtemp(prefix="crm-doc-"))
        for entry in ROOT.iterdir():
            if entry.name not in ("target", ".git") and not entry.name.endswith((".db", ".db-wal", ".db-shm")):
                (scratch / entry.name).symlink_to(entry)
        try:
            for b in todo:
                why = "run by .ci/server.sh against a server" if server_block(b) else skip_reason(b)
                if why:
                    skipped += 1
                    print(f"-- {b.where}: skipped ({why})")
                    continue
                print(f"-- {b.where}: running", flush=True)
                ran += 1
                r = subprocess.run(["bash", "-euo", "pipefail", "-c", b.text], cwd=scratch, env=env, timeout=900)
                if r.returncode != 0:
                    failed.append(f"{b.where}: exit {r.returncode}")
                    print(f"!! {b.where}: the block failed (exit {r.returncode})", file=sys.stderr)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    shutil.rmtree(bin_dir, ignore_errors=True)
    print(f"shell blocks: {ran} ran, {skipped} skipped, {len(failed)} failed")
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed or ran == 0 else 0


PLACEHOLDER = re.compile(r"^([A-Z_][A-Z0-9_]*)=<[^>]*>[^\n]*$", re.M)

# Before each server block: curl fails on HTTP errors; a --max-time running out is intended.
SERVER_PRELUDE = """curl() {
  local rc=0
  command curl --fail-with-body "$@" || rc=$?
  [ "$rc" = 0 ] || [ "$rc" = 28 ] || return "$rc"
}
"""


def server(files: List[str]) -> int:
    """The SERVER blocks (of `files`, else all), against the server at $CRM_DOC_BASE."""
    base = os.environ.get("CRM_DOC_BASE", "").rstrip("/")
    missing = [v for v in ("CRM_DOC_BASE", "ORG", "PASSWORD", "TOKEN") if not os.environ.get(v)]
    if missing:
        print(f"doc_blocks.py server needs {', '.join(missing)} (.ci/server.sh sets them)", file=sys.stderr)
        return 2
    host = base.split("://", 1)[-1]
    chosen = [ROOT / f for f in files] if files else markdown_files()
    todo = [b for path in chosen for b in blocks(path) if server_block(b)]
    failed = []
    for b in todo:
        scratch = Path(tempfile.mkdtemp(prefix="crm-doc-"))
        for entry in ROOT.iterdir():
            if entry.name not in ("target", ".git") and not entry.name.endswith((".db", ".db-wal", ".db-shm")):
                (scratch / entry.name).symlink_to(entry)
        text = PLACEHOLDER.sub(lambda m: f': "${{{m.group(1)}:?}}"', b.text).replace("localhost:8080", host)
        print(f"\n-- {b.where}: running against {base}", flush=True)
        try:
            r = subprocess.run(["bash", "-euo", "pipefail", "-c", SERVER_PRELUDE + text], cwd=scratch, timeout=300)
            if r.returncode != 0:
                failed.append(f"{b.where}: exit {r.returncode}")
                print(f"!! {b.where}: the block failed (exit {r.returncode})", file=sys.stderr)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"\nserver blocks: {len(todo)} ran, {len(failed)} failed")
    for f in failed:
        print(f"FAILED {f}", file=sys.stderr)
    return 1 if failed or not todo else 0


def main(argv: List[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "check"
    if cmd == "check":
        return check()
    if cmd == "list":
        for b in all_blocks():
            print(f"{b.where:28} {b.lang or '(none)':8} {runner(b) or 'NOTHING'}")
        return 0
    if cmd == "shell":
        return shell(argv[2:])
    if cmd == "server":
        return server(argv[2:])
    if cmd == "kotlin" and len(argv) == 3:
        # The Kotlin blocks .ci/mobile.sh compiles with its tests, one file each, into DIR.
        out = Path(argv[2])
        out.mkdir(parents=True, exist_ok=True)
        chosen = [b for b in blocks(ROOT / "docs/mobile.md") if jvm_kotlin(b)]
        for b in chosen:
            (out / f"MobileGuideLine{b.line}.kt").write_text(f"// docs/mobile.md:{b.line}\n{b.text}", encoding="utf-8")
        print(f"{len(chosen)} Kotlin blocks of docs/mobile.md in {out}")
        return 0 if chosen else 1
    if cmd == "block" and len(argv) == 4:
        # The text of FILE's block that starts with HEAD (for a CI script that runs it verbatim).
        found = [b for b in blocks(ROOT / argv[2]) if b.text.startswith(argv[3])]
        if len(found) != 1:
            print(f"{argv[2]}: {len(found)} blocks start with {argv[3]!r}", file=sys.stderr)
            return 1
        sys.stdout.write(found[0].text)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
