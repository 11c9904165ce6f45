"""Progress of long work: ``progress=`` on load_demo, import_csv, export_csv and rescore receives
monotonic counts from the core, ending at the total; ``progress=True`` draws a tqdm bar."""

import os

import pytest

import crm


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, done, total, unit):
        self.calls.append((done, total, unit))

    def check(self, unit):
        assert self.calls, "no progress reported"
        dones = [d for d, _, _ in self.calls]
        assert dones == sorted(dones), f"not monotonic: {self.calls}"
        assert all(u == unit for _, _, u in self.calls), self.calls
        assert all(t is None or d <= t for d, t, _ in self.calls), self.calls
        done, total, _ = self.calls[-1]
        assert done == total, f"does not end at the total: {self.calls[-1]}"
        return total


def test_callbacks_receive_monotonic_progress_ending_at_the_total(tmp_path):
    path = str(tmp_path / "p.db")
    rec = Recorder()
    crm.load_demo(path, leads=300, progress=rec)
    assert rec.check("records") == 450  # 150 contacts and 300 leads
    assert len(rec.calls) >= 4  # one per 100 records, and the last

    db = crm.open(path)
    rec = Recorder()
    assert db.scoring.rescore(progress=rec).scanned == 300
    assert rec.check("records") == 300

    out = str(tmp_path / "leads.csv")
    rec = Recorder()
    assert db.export_csv(out, fields=["first_name", "source"], progress=rec) == 300
    assert rec.check("records") == 300

    # 4,500 rows: three batches of the import, reported as bytes of the file.
    big = tmp_path / "big.csv"
    big.write_text("first_name,source\n" + "".join(f"Row{i},website\n" for i in range(4500)))
    rec = Recorder()
    report = db.import_csv(str(big), progress=rec)
    assert report.valid == 4500
    assert rec.check("bytes") == os.path.getsize(big)
    assert len(rec.calls) >= 4


def test_an_exception_in_the_callback_is_raised(tmp_path, db):
    out = str(tmp_path / "x.csv")

    def boom(done, total, unit):
        raise KeyError("stop")

    with pytest.raises(KeyError):
        db.export_csv(out, fields=["first_name"], progress=boom)
    with pytest.raises(TypeError):
        db.export_csv(out, fields=["first_name"], progress="yes")


def test_progress_true_draws_a_tqdm_bar(tmp_path, db, capsys):
    pytest.importorskip("tqdm")
    out = str(tmp_path / "x.csv")
    n = db.export_csv(out, fields=["first_name"], progress=True)
    err = capsys.readouterr().err
    assert "export" in err and f"{n}/{n}" in err, err
