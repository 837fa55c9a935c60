"""Atomic outputs: temporary siblings, stale debris of killed jobs, checked writes."""

import os

import pytest

from slidesnake import io
from slidesnake.io import atomic_path, stale_siblings, temporary_sibling, write_all


def test_temporary_sibling_keeps_the_suffix_and_names_the_process(tmp_path):
    final = tmp_path / "model.keras"
    tmp = temporary_sibling(final)
    assert tmp.parent == tmp_path and tmp.suffix == ".keras"
    assert tmp.name == f".model.keras.{os.getpid()}.tmp.keras"
    assert stale_siblings(final) == [] and not tmp.exists()


def test_stale_siblings_of_killed_jobs_are_removed_and_others_kept(tmp_path):
    final = tmp_path / "A01.zarr"
    stale_dir = tmp_path / ".A01.zarr.1234.tmp"
    (stale_dir / "image").mkdir(parents=True)
    (stale_dir / "image" / "chunk").write_bytes(b"half")
    stale_file = tmp_path / ".A01.zarr.99.tmp"
    other = tmp_path / ".A011.zarr.1234.tmp"  # another output's debris: not ours to remove
    stale_file.write_bytes(b"")
    other.write_bytes(b"")
    with atomic_path(final) as tmp:
        assert not stale_dir.exists() and not stale_file.exists()
        tmp.mkdir()
        (tmp / "zarr.json").write_text("{}")
    assert (final / "zarr.json").read_text() == "{}"
    assert other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".A011.zarr.1234.tmp", "A01.zarr"]


def test_an_exception_leaves_the_old_output_and_no_temporary(tmp_path):
    final = tmp_path / "table.tsv"
    final.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.tsv"]


def test_write_all_finishes_short_writes(tmp_path, monkeypatch):
    real_write = os.write
    calls = []

    def half_write(handle, data):  # a file system that accepts half of each write (e.g. a full quota)
        calls.append(len(data))
        return real_write(handle, bytes(data[: max(1, len(data) // 2)]))

    monkeypatch.setattr(io.os, "write", half_write)
    path = tmp_path / "chunk"
    handle = os.open(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(handle, bytes(range(256)) * 40)
    finally:
        os.close(handle)
    assert path.read_bytes() == bytes(range(256)) * 40
    assert len(calls) > 5


def test_write_all_refuses_a_write_that_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(io.os, "write", lambda handle, data: 0)
    handle = os.open(tmp_path / "chunk", os.O_WRONLY | os.O_CREAT)
    try:
        with pytest.raises(OSError, match="wrote 0 of 10 bytes"):
            write_all(handle, b"0123456789")
    finally:
        os.close(handle)


def test_a_full_disk_is_an_error_not_a_short_file(tmp_path):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    handle = os.open("/dev/full", os.O_WRONLY)
    try:
        with pytest.raises(OSError):
            write_all(handle, b"x" * 100)
    finally:
        os.close(handle)


def test_the_debris_of_a_longer_name_is_not_ours(tmp_path):
    running = tmp_path / ".A01.tsv.gz.4321.tmp.gz"  # another job's temporary output, still being written
    running.write_bytes(b"")
    assert stale_siblings(tmp_path / "A01.tsv") == []
    assert stale_siblings(tmp_path / "A01.tsv.gz") == [running]
