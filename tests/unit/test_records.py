"""Deployment records and the journal: saved, found again, and never half-written."""

from __future__ import annotations

import json

import pytest

from app.domain import Endpoint, Resource
from app.errors import UsageError
from app.store.journal import Journal, open_journals, remove_journals
from app.store.records import (
    DeploymentRecord,
    ModelVersion,
    delete_record,
    find_record,
    list_records,
    load_record,
    record_path,
    save_record,
)


def make_record(name: str = "iris") -> DeploymentRecord:
    proc = Resource("process", f"modelship-{name}-v2", data={"pid": 1, "port": 8080})
    files1 = Resource("files", f"/data/models/{name}/v1")
    files2 = Resource("files", f"/data/models/{name}/v2")
    rec = DeploymentRecord(name=name, target="local", profile={"name": name})
    rec.endpoint = Endpoint("http://127.0.0.1:8080", "local", [proc]).to_dict()
    rec.versions = [
        ModelVersion(
            1, f"/data/models/{name}/v1/model.onnx", "m.joblib", resources=[files1.to_dict()]
        ).__dict__,
        ModelVersion(
            2, f"/data/models/{name}/v2/model.onnx", "m.joblib", resources=[files2.to_dict()]
        ).__dict__,
    ]
    rec.current_version = 2
    return rec


def test_save_and_load_round_trip() -> None:
    rec = make_record()
    path = save_record(rec)
    assert path == record_path("iris")
    again = load_record("iris")
    assert again.to_dict() == rec.to_dict()
    assert again.url == "http://127.0.0.1:8080"
    assert [r.kind for r in again.resources()] == ["process"]
    assert again.version().model_path.endswith("v2/model.onnx")
    assert str(again.version().proof_path).endswith("v2/model.proof.json")
    # nothing but the record itself is left in the folder (atomic write, no temp files)
    assert sorted(p.name for p in path.parent.iterdir()) == ["iris.json"]


def test_versions_and_rollback_target() -> None:
    rec = make_record()
    assert rec.previous_version().version == 1
    assert rec.next_version_number() == 3
    kinds = [(r.kind, r.id.rsplit("/", 1)[-1]) for r in rec.all_resources()]
    assert kinds == [("process", "modelship-iris-v2"), ("files", "v1"), ("files", "v2")]
    rec.current_version = 1
    assert rec.previous_version() is None


def test_list_find_delete_and_unknown_name() -> None:
    save_record(make_record("a"))
    save_record(make_record("b"))
    assert [r.name for r in list_records()] == ["a", "b"]
    assert find_record("zzz") is None
    with pytest.raises(UsageError, match=r"No deployment named 'zzz'\. Known: a, b\."):
        load_record("zzz")
    assert delete_record("a") is True
    assert delete_record("a") is False
    assert [r.name for r in list_records()] == ["b"]


def test_damaged_record_is_a_clear_error() -> None:
    record_path("bad").write_text("{not json")
    with pytest.raises(UsageError, match="damaged"):
        find_record("bad")


def test_journal_replays_resources_and_finds_crashed_runs() -> None:
    j = Journal.create("iris")
    a = j.record(Resource("files", "/x/v1"))
    b = j.record(Resource("process", "p1", data={"pid": None}))
    b.data["pid"] = 4242
    j.update(b)
    live = j.resources()
    assert [(r.kind, r.data.get("pid")) for r in live] == [("files", None), ("process", 4242)]
    # not closed: this is what a crashed run looks like
    assert [x.path for x in open_journals("iris")] == [j.path]
    j.removed(a)
    assert [r.kind for r in j.resources()] == ["process"]
    j.close("rolled_back")
    assert j.outcome == "rolled_back"
    assert open_journals("iris") == []
    remove_journals("iris")
    assert not j.path.exists()


def test_journal_survives_a_torn_last_line() -> None:
    j = Journal.create("cut")
    j.record(Resource("process", "p1", data={"pid": 7}))
    with open(j.path, "a") as fh:
        fh.write('{"op": "create", "resou')  # a crash mid-write
    assert [r.id for r in j.resources()] == ["p1"]
    lines = j.path.read_text().splitlines()
    assert json.loads(lines[0])["op"] == "opened"
