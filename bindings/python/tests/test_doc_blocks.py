"""Every ```python block of README.md and docs/ runs as written, against the installed package.

The blocks of one file run in order in one namespace (as a reader pastes them into one session),
in a fresh directory that links the checkout's `examples/` (so `examples/data/leads.csv` resolves as
from a checkout's root). Tracebacks carry the Markdown file and line: a failure names the block.
Which blocks run where, and the few that cannot run here: `.ci/doc_blocks.py list`.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("doc_blocks", ROOT / ".ci" / "doc_blocks.py")
doc_blocks = importlib.util.module_from_spec(_spec)
sys.modules["doc_blocks"] = doc_blocks  # its dataclass looks itself up there
_spec.loader.exec_module(doc_blocks)

FILES = {
    b.file: None
    for b in doc_blocks.all_blocks(ROOT)
    if b.lang == "python" and doc_blocks.skip_reason(b) is None
}


def test_the_guides_have_python_blocks():
    assert "docs/python.md" in FILES and "docs/front-desk.md" in FILES, FILES


@pytest.mark.parametrize("file", sorted(FILES))
def test_python_blocks_run_as_written(file, tmp_path, monkeypatch):
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__doc_block__"}
    for b in doc_blocks.blocks(ROOT / file, ROOT):
        if b.lang != "python" or doc_blocks.skip_reason(b):
            continue
        # Line numbers in tracebacks are the Markdown file's: the block starts after its fence.
        code = compile("\n" * b.line + b.text, f"{ROOT / file}", "exec")
        try:
            exec(code, namespace)
        except Exception as e:
            raise AssertionError(f"the ```python block at {b.where} failed: {e!r}") from e
