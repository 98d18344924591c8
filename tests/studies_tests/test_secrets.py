"""Storage URLs without passwords on command lines: DSE_STORAGE, --storage-file, masking that parses
the URL (a password may hold any character), and a warning when a password is typed on the line."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from studies import storage
from studies.storage import normalise, password_of, redact, redact_text, storage_url

from .cli_helpers import run, write_file
from .codesign_helpers import codesign_args, load, states, write_network

PASSWORDS = ["s3cr3t", "p@ss@w0rd", "a:b/c?d#e@f", "100%sure", "with space", "%40already-encoded"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_masking_and_the_driver_see_the_whole_password(password):
    url = f"postgresql://alice:{password}@db.example:5432/dse"
    assert redact(url) == "postgresql://alice:***@db.example:5432/dse"
    assert password_of(url) == password
    parsed = make_url(normalise(url))             # what SQLAlchemy and the driver receive
    assert parsed.host == "db.example" and parsed.port == 5432 and parsed.database == "dse"
    expected = "@already-encoded" if password.startswith("%40") else password
    assert parsed.username == "alice" and parsed.password == expected
    message = f"connection to server at db.example failed for {url} (password {password})"
    assert password not in redact_text(message, url)


def test_urls_without_passwords_are_left_alone():
    for url in ("postgresql://alice@db/dse", "sqlite:///x.db", "journal:///j.log", "postgresql://db/dse"):
        assert redact(url) == url and normalise(url) == url and password_of(url) is None


def test_a_password_with_at_signs_never_reaches_the_output(capsys, tmp_path):
    network = write_network(tmp_path)
    url = "postgresql://alice:p@ss@w0rd@127.0.0.1:1/dse"
    code, out, err = run(capsys, *codesign_args(network, url, trials=1))
    assert code == 2 and "alice:***@127.0.0.1" in err
    for fragment in ("p@ss", "ss@w0rd", "w0rd"):
        assert fragment not in out + err
    assert "visible to every user" in err                  # the warning to use another way


def test_the_url_comes_from_the_environment_or_a_file(capsys, tmp_path, monkeypatch):
    network = write_network(tmp_path)
    from_env = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("DSE_STORAGE", from_env)
    argv = [a for a in codesign_args(network, "unused", trials=2) if a != "unused"]
    argv.remove("--storage")
    code, _, err = run(capsys, *argv)
    assert code == 0 and "visible to every user" not in err
    assert states(load(from_env)) == {"COMPLETE": 2}
    url_file = write_file(tmp_path, "storage.url", f"\n  sqlite:///{tmp_path / 'file.db'}  \n")
    code, _, _ = run(capsys, "study", "list", "--storage-file", url_file)
    assert code == 2                                        # that file names a database not yet made
    code, out, _ = run(capsys, *argv, "--storage-file", url_file)
    assert code == 0 and states(load(f"sqlite:///{tmp_path / 'file.db'}")) == {"COMPLETE": 2}
    code, out, _ = run(capsys, "study", "list")             # $DSE_STORAGE again
    assert code == 0 and "tiny" in out
    assert storage_url("sqlite:///given.db", str(url_file)) == "sqlite:///given.db"   # --storage wins
    monkeypatch.delenv("DSE_STORAGE")
    assert storage_url(None, None) == storage.DEFAULT_STORAGE
    empty = write_file(tmp_path, "e.url", "\n")
    for bad, needle in ((tmp_path / "missing.url", "cannot read"), (empty, "empty")):
        code, _, err = run(capsys, "study", "list", "--storage-file", bad)
        assert code == 2 and "--storage-file" in err and needle in err
