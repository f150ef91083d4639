"""Locked assignments (cnnlab.assignments): saved on the server, loaded by id, locks that cannot be lifted."""
import json
import os

import pytest

from cnnlab import assignments as asg


def test_create_load_round_trip(tmp_path):
    a = asg.create(tmp_path, {"arch": "vgg", "ratio": 8, "ep": "3"}, ["arch", "ratio"], title="VGG ratio",
                   preset="vgg_cpu")
    b = asg.load(tmp_path, a.id)
    assert b.params == {"arch": "vgg", "ratio": "8", "ep": "3"}
    assert b.locked == ("arch", "ratio") and b.title == "VGG ratio" and b.preset == "vgg_cpu"
    assert [x.id for x in asg.list_all(tmp_path)] == [a.id]
    assert asg.delete(tmp_path, a.id) and asg.list_all(tmp_path) == []


def test_merge_keeps_locked_settings(tmp_path):
    a = asg.create(tmp_path, {"arch": "vgg", "ratio": "8", "ep": "3"}, ["arch", "ratio"])
    got = asg.merge(a, {"arch": "alexnet", "ratio": "1", "ep": "5", "lr": "0.1", "fc_width": "64"})
    # fixing the architecture fixes its knobs: the ones the assignment does not write stay at their defaults
    assert got == {"arch": "vgg", "ratio": "8", "ep": "5", "lr": "0.1", "batchnorm": "off", "conv_arch": "vgg11",
                   "dropout": "0.5", "fc_div_ratio": "off", "fc_width": "4096"}


def test_fixing_the_architecture_fixes_its_knobs(tmp_path):
    a = asg.create(tmp_path, {"arch": "lenet", "batchnorm": "scratch", "res": "28", "ep": "10"},
                   ["arch", "res", "ep"])
    fix = asg.fixed(a)
    assert fix["batchnorm"] == "scratch" and fix["res"] == "28" and fix["arch"] == "lenet"
    assert "lr" not in fix
    now = {"arch": "lenet", "batchnorm": "scratch", "res": "28", "ep": "10", "lr": "0.9"}
    for k in asg.fixed(a):
        now.setdefault(k, fix[k])
    assert asg.broken(a, now) == []
    assert asg.broken(a, {**now, "batchnorm": "off"}) == ["batchnorm"]
    assert asg.broken(a, {**now, "res": "28.0", "ep": "10"}) == []        # the same value, written otherwise
    assert asg.broken(a, {k: v for k, v in now.items() if k != "res"}) == ["res"]  # a value left out is no match


def test_an_ep_only_lock_leaves_the_architecture_free(tmp_path):
    a = asg.create(tmp_path, {"arch": "lenet", "ep": "3"}, ["ep"])
    assert asg.fixed(a) == {"ep": "3"}
    assert asg.merge(a, {"arch": "vgg", "ep": "9"}) == {"arch": "vgg", "ep": "3"}


@pytest.mark.parametrize("aid", ["", "../../etc/passwd", "a b c d e f", "x" * 40, None, "short"])
def test_bad_ids_are_one_sentence(tmp_path, aid):
    with pytest.raises(asg.AssignmentError):
        asg.load(tmp_path, aid)


def test_cannot_lock_what_it_does_not_set(tmp_path):
    with pytest.raises(asg.AssignmentError, match="lock"):
        asg.create(tmp_path, {"arch": "vgg"}, ["ratio"])
    with pytest.raises(asg.AssignmentError, match="setting"):
        asg.create(tmp_path, {"Arch!": "vgg"}, [])
    with pytest.raises(asg.AssignmentError):
        asg.create(tmp_path, {"arch": "v" * 100}, [])


@pytest.mark.parametrize("content", [b"{", b"[]", b'{"format": "cnnlab-assignment"}', b"x" * (20 << 10),
                                     json.dumps({"format": "cnnlab-assignment", "id": "abcdefgh", "params": {},
                                                 "locked": ["arch"]}).encode()])
def test_crafted_files_are_refused(tmp_path, content):
    folder = tmp_path / asg.FOLDER
    folder.mkdir()
    (folder / "abcdefgh.json").write_bytes(content)
    with pytest.raises(asg.AssignmentError):
        asg.load(tmp_path, "abcdefgh")
    assert asg.list_all(tmp_path) == []


def test_symlink_is_not_followed(tmp_path):
    folder = tmp_path / asg.FOLDER
    folder.mkdir()
    good = asg.create(tmp_path / "other", {"arch": "vgg"}, [])
    os.symlink(tmp_path / "other" / asg.FOLDER / f"{good.id}.json", folder / f"{good.id}.json")
    with pytest.raises(asg.AssignmentError):
        asg.load(tmp_path, good.id)
