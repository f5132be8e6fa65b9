"""An id never chooses a path (contract section 4): whatever a practice's app exports as practice_id, its
batch files land in its own folder under <out>/xero/, no two practices share a folder (case told apart or
not), and nothing is written outside the output folder."""

from __future__ import annotations

from pathlib import Path

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.xero.files import practice_folders
from tests.reliability.harness import Outcome, run_source
from tests.reliability.matrix import ALL
from tests.reliability.practice import add_practice, empty_source, write_source

HOSTILE = [
    "../harbour",  # would land in practice harbour's folder
    "../../outside",
    "a/b",
    "a\\b",
    "..",
    ".",
    ".hidden",
    "nul\x00byte",
    "tab\tand\nnewline\x7f",
    "x" * 300,
    "CON",
    "nul",
    "Com1",
    "lpt9.txt",
    "trailing.",
    "with space",
    "Zoë",
    "Harbour",  # differs from harbour only in case
    "northgate",  # plain: its own name
    "harbour",
]


def _short_markers(source, pid: str, short: str) -> None:
    """Names carry the practice's «marker»; a long id's would break Xero's 100 characters (and hold the
    invoices), so its names carry a short marker of their own."""
    for rows in source.values():
        for row in rows:
            if row.get("practice_id") == pid:
                row.update(
                    {
                        k: v.replace(f"«{pid}»", f"«{short}»")
                        for k, v in row.items()
                        if k != "practice_id" and v
                    }
                )


def misplaced_files(work: Path, ids: list[str]) -> tuple[dict[str, str], list[str]]:
    """Each practice's folder (from xero_batches) and everything wrong with where files went: a file
    outside the output folder, a batch file not in its practice's folder, two practices in one folder."""
    con = duckdb.connect(str(work / "wh" / "warehouse.duckdb"), read_only=True)
    try:
        batches = con.execute("select practice_id, path, csv_path from xero_batches").fetchall()
    finally:
        con.close()
    wrong: list[str] = []
    folders: dict[str, str] = {}
    for practice_id, path, csv_path in batches:
        for file in (path, csv_path):
            parts = Path(file).parts
            if len(parts) != 3 or parts[0] != "xero" or not (work / "out" / file).is_file():
                wrong.append(f"{practice_id!r}: batch file {file!r} is not a file of xero/<folder>/")
            elif folders.setdefault(practice_id, parts[1]) != parts[1]:
                wrong.append(f"{practice_id!r}: files in two folders")
    out, warehouse = (work / "out").resolve(), (work / "wh").resolve()
    for path in (p for p in work.rglob("*") if p.is_file()):
        resolved = path.resolve()
        # only the warehouse, its lock and its parts (the tables kept as Parquet) live beside the output
        if not (resolved.is_relative_to(out) or resolved.is_relative_to(warehouse)):
            wrong.append(f"{path} is outside the output folder")
    if set(folders) != set(ids):
        wrong.append(f"practices without batches: {sorted(set(ids) - set(folders))!r}")
    if len({f.lower() for f in folders.values()}) != len(folders):
        wrong.append("two practices share a folder (case told apart or not)")
    return folders, wrong


def hostile_run(ids: list[str], work: Path) -> tuple[Outcome, dict[str, str], list[str]]:
    """One source holding a practice (two ready invoices each) per id, run whole with batches."""
    source = empty_source()
    for k, pid in enumerate(ids):
        add_practice(source, pid)
        if len(pid) > 20:
            _short_markers(source, pid, f"long-{k}")
    folder = write_source(source, work / "source", parquet=ALL)
    outcome = run_source(folder, work / "run")
    if outcome.crashed or outcome.stopped:
        return outcome, {}, []
    folders, wrong = misplaced_files(work / "run", ids)
    for pid in ids:
        if outcome.practice_states(pid) != {"i1": "ready", "i2": "ready"}:
            wrong.append(f"{pid!r}: {outcome.practice_states(pid)}")
    return outcome, folders, wrong


def _run_practices(ids: list[str], work: Path) -> dict[str, str]:
    outcome, folders, wrong = hostile_run(ids, work)
    assert outcome.crashed is None and outcome.stopped is None, outcome.crashed or outcome.stopped
    assert outcome.leaks == []
    assert wrong == []
    return folders


def test_hostile_ids_each_get_a_folder_of_their_own_inside_the_output(tmp_path):
    folders = _run_practices(HOSTILE, tmp_path)

    assert folders["northgate"] == "northgate"  # a plain id names its folder as it is
    for pid in HOSTILE:
        name = folders[pid]
        assert "/" not in name and "\\" not in name and "\x00" not in name and name not in (".", "..")
        assert len(name) <= 100
    assert folders["harbour"] != "harbour" and folders["Harbour"] != "Harbour"  # equal but for case
    assert folders["../harbour"].startswith("~")
    for reserved in ("CON", "nul", "Com1", "lpt9.txt", "trailing."):
        assert folders[reserved].startswith("~"), reserved


def test_a_folder_name_is_stable_and_depends_only_on_the_ids_seen():
    first = practice_folders(["../harbour", "northgate", "a/b"])
    again = practice_folders(["a/b", "../harbour", "northgate"])
    assert first == again
    assert first["northgate"] == "northgate"
    assert practice_folders(["northgate", "Northgate"])["northgate"] != "northgate"


# Any id at all -------------------------------------------------------------------------------------------

IDS = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="«»", exclude_categories=("Cs",)),
    min_size=1,
    max_size=120,
).filter(lambda s: s.strip() != "")


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(IDS, min_size=2, max_size=5, unique=True))
def test_no_file_lands_outside_its_practices_folder_and_no_two_practices_share_one(ids, tmp_path_factory):
    _run_practices(ids, tmp_path_factory.mktemp("ids"))


@given(ids=st.lists(IDS, min_size=1, max_size=30, unique=True))
def test_folder_names_are_plain_file_names_unique_even_without_case(ids):
    folders = practice_folders(ids)
    names = list(folders.values())
    assert len({n.lower() for n in names}) == len(ids)
    for name in names:
        assert name and len(name) <= 100 and name not in (".", "..")
        assert all(c.isascii() and (c.isalnum() or c in "-_.~") for c in name), name
