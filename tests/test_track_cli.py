"""MOTChallenge files (keras_zoo.track.mot), scores against ground truth (keras_zoo.track.metrics)
and `keras-zoo track`: files read back as written, every kind of bad input refused in a first
line that names the file and line, sequences tracked into OUT/SEQ.txt (all of them or none),
and the scores of py-motmetrics' own MOT15 data equal to those its test-suite expects."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_zoo import cli
from keras_zoo.track import Sort, metrics, mot
from tests.conftest import TEST_EXTRA, require_module

TRACKEVAL_INSTALL = "pip install --no-deps trackeval==1.3.0"


def _write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _moving_boxes(n_objects, n_frames, seed):
    """Ground truth of objects moving at constant speed: {frame: [(id, x, y, w, h)]}."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 300, (n_objects, 2)) + np.arange(n_objects)[:, None] * 400
    speed = rng.uniform(-3, 3, (n_objects, 2))
    size = rng.uniform(40, 80, (n_objects, 2))
    return {
        f: [(i + 1, *(start[i] + speed[i] * (f - 1)), *size[i]) for i in range(n_objects)]
        for f in range(1, n_frames + 1)
    }


def _det_lines(truth, gap=()):
    return [
        f"{f},-1,{x:.3f},{y:.3f},{w:.3f},{h:.3f},0.9,-1,-1,-1"
        for f, boxes in truth.items()
        if f not in gap
        for _, x, y, w, h in boxes
    ]


def _gt_lines(truth):
    # MOT16+'s layout, object by object, with a flag-0 box that the scores must ignore
    lines = [
        f"{f},{i},{x:.3f},{y:.3f},{w:.3f},{h:.3f},1,1,1.0"
        for i in sorted({i for boxes in truth.values() for i, *_ in boxes})
        for f, boxes in truth.items()
        for j, x, y, w, h in boxes
        if j == i
    ]
    return [*lines, "1,99,1000,1000,30,30,0,8,1.0"]


def _main(argv, capsys):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


# -- files ------------------------------------------------------------------------------------


def test_detections_and_results_read_back_as_written_with_every_frame(tmp_path):
    det = _write(
        tmp_path / "S" / "det" / "det.txt",
        ["1,-1,10,20,30,40,0.9,-1,-1,-1", "1,-1,5.5,6,7,8,0.25,-1,-1,-1", "", "4,-1,1,2,3,4,0.5"],
    )
    table = mot.read_table(det)
    assert len(table) == 3 and table.skipped == 0 and table.last_frame == 4
    got = list(mot.frames(table))
    assert [f for f, _ in got] == [1, 2, 3, 4]  # empty frames between, as sort.py runs them
    np.testing.assert_array_equal(got[0][1], [[10, 20, 40, 60, 0.9], [5.5, 6, 12.5, 14, 0.25]])
    assert got[1][1].shape == got[2][1].shape == (0, 5)
    np.testing.assert_array_equal(got[3][1], [[1, 2, 4, 6, 0.5]])
    assert [s.name for s in mot.find_sequences(det)] == ["S"]
    assert mot.find_sequences(tmp_path / "S") == [mot.Sequence("S", str(det))]

    tracks = {1: np.array([[10, 20, 40.004, 60, 2], [1, 2, 3.5, 4.25, 1]]), 3: np.zeros((0, 5))}
    lines = [line for f, t in tracks.items() for line in mot.result_lines(f, t)]
    assert lines == ["1,2,10.00,20.00,30.00,40.00,1,-1,-1,-1", "1,1,1.00,2.00,2.50,2.25,1,-1,-1,-1"]
    out = tmp_path / "out" / "S.txt"
    out.parent.mkdir()
    mot.write_lines(out, lines)
    assert out.read_text() == "".join(line + "\n" for line in lines)
    back = mot.read_table(out, frame_order=False)
    np.testing.assert_array_equal(back.ids, [2, 1])
    np.testing.assert_allclose(back.boxes, [[10, 20, 30, 40], [1, 2, 2.5, 2.25]])
    assert os.listdir(out.parent) == ["S.txt"]  # no partial file left beside it


def test_ground_truth_in_object_order_is_sorted_by_frame_and_its_ignored_rows_dropped(tmp_path):
    gt_lines = ["1,1,0,0,10,10,1,1,1", "2,1,1,0,10,10,1,1,1", "1,2,50,0,10,10,1,1,1"]
    gt = _write(tmp_path / "gt.txt", [*gt_lines, "2,2,51,0,10,10,0,8,1"])  # ignored: flag 0
    table = metrics.ground_truth(mot.read_table(gt, frame_order=False))
    assert table.frames.tolist() == [1, 1, 2] and table.ids.tolist() == [1, 2, 1]


@pytest.mark.parametrize(
    "lines, line, expected",
    [
        (["1,-1,1,2,3,4,0.9", "1,-1,1,2,x,4,0.9"], 2, "'x' is not a number"),
        (["1,-1,1,2,3,4"], 1, "6 columns: expected 7 to 10 comma-separated numbers"),
        (["1,-1,1,2,3,4,1,1,1,1,1"], 1, "11 columns"),
        (["2,-1,1,2,3,4,0.9", "1,-1,1,2,3,4,0.9"], 2, "frame 1 after frame 2: expected"),
        (["0,-1,1,2,3,4,0.9"], 1, "frame 0: expected frame numbers from 1"),
        (["1.5,-1,1,2,3,4,0.9"], 1, "frame 1.5: expected a whole number"),
        (["1,nan,1,2,3,4,0.9"], 1, "id nan: expected a whole number"),
        (["1,-1,1,2,3,4,0.9", "1,-1," + "1," * 600 + "1"], 2, "line longer than 1024 bytes"),
    ],
)
def test_a_malformed_line_is_an_error_naming_the_file_and_line(tmp_path, lines, line, expected):
    path = _write(tmp_path / "det.txt", lines)
    with pytest.raises(ValueError) as err:
        mot.read_table(path)
    assert str(err.value).startswith(f"{path}:{line}: {expected}"), str(err.value)


def test_text_that_is_not_ascii_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "det.txt"
    path.write_bytes(b"1,-1,1,2,3,4,0.9\n1,-1,1,2,3,4,\xff\n")
    with pytest.raises(ValueError, match=r"^.*det\.txt:2: bytes that are not text"):
        mot.read_table(path)


def test_files_too_large_are_refused_before_they_are_read(tmp_path, monkeypatch):
    path = _write(tmp_path / "det.txt", ["1,-1,1,2,3,4,0.9"] * 5)
    monkeypatch.setattr(mot, "MAX_FILE_BYTES", 50)
    with pytest.raises(ValueError, match=rf"^{path}: 85 bytes: expected a MOTChallenge file"):
        mot.read_table(path)
    monkeypatch.setattr(mot, "MAX_FILE_BYTES", 10**6)
    monkeypatch.setattr(mot, "MAX_LINES", 4)
    with pytest.raises(ValueError, match=rf"^{path}: more than 4 lines"):
        mot.read_table(path)
    with pytest.raises(FileNotFoundError, match=rf"^{tmp_path / 'none.txt'}: cannot read"):
        mot.read_table(tmp_path / "none.txt")


def test_degenerate_boxes_are_skipped_and_counted(tmp_path):
    lines = ["1,-1,1,2,3,4,0.9", "1,-1,1,2,0,4,0.9", "1,-1,1,2,3,-4,0.9", "2,-1,nan,2,3,4,0.9"]
    lines += ["2,-1,1,2,inf,4,0.9", "2,-1,1,2,3,4,-inf", "3,-1,1,2,3,4,0.5"]
    table = mot.read_table(_write(tmp_path / "det.txt", lines))
    assert table.skipped == 5 and table.frames.tolist() == [1, 3]
    assert [len(d) for _, d in mot.frames(table)] == [1, 0, 1]


def test_sequences_are_found_in_both_layouts_and_ground_truth_matched_by_name(tmp_path):
    a = _write(tmp_path / "A" / "det" / "det.txt", ["1,-1,1,2,3,4,0.9"])
    b = _write(tmp_path / "B" / "det.txt", ["1,-1,1,2,3,4,0.9"])
    (tmp_path / "notes").mkdir()
    assert mot.find_sequences(tmp_path) == [mot.Sequence("A", str(a)), mot.Sequence("B", str(b))]
    with pytest.raises(ValueError, match=rf"^{tmp_path / 'notes'}: no sequence: expected det"):
        mot.find_sequences(tmp_path / "notes")
    gt_a = _write(tmp_path / "A" / "gt" / "gt.txt", ["1,1,1,2,3,4,1"])
    with pytest.raises(ValueError, match=rf"^{tmp_path}: no gt file for sequence 'B': expected "):
        mot.match_sequences(tmp_path, ["A", "B"])
    assert mot.match_sequences(tmp_path, ["A"]) == [str(gt_a)]
    with pytest.raises(ValueError, match=rf"^{gt_a}: one file for 2 sequences"):
        mot.match_sequences(gt_a, ["A", "B"])


# -- the command ------------------------------------------------------------------------------


def _two_sequences(root):
    """A folder of sequences A (two objects, 10 frames) and B (one object, 8 frames, none
    detected in frame 5), in the two layouts, with their ground truth."""
    truth_a, truth_b = _moving_boxes(2, 10, seed=1), _moving_boxes(1, 8, seed=2)
    _write(root / "A" / "det" / "det.txt", _det_lines(truth_a))
    _write(root / "B" / "det.txt", _det_lines(truth_b, gap={5}))
    _write(root / "A" / "gt" / "gt.txt", _gt_lines(truth_a))
    _write(root / "B" / "gt" / "gt.txt", _gt_lines(truth_b))
    return truth_a, truth_b


def _expected_rows(det_path):
    """What sort.py writes for a det.txt: each frame's tracks from 1 to its last frame."""
    dets = np.loadtxt(det_path, delimiter=",")
    tracker, rows = Sort(), []
    for frame in range(1, int(dets[:, 0].max()) + 1):
        d = dets[dets[:, 0] == frame, 2:7].copy()
        d[:, 2:4] += d[:, 0:2]
        for t in tracker.update(d):
            x1, y1, x2, y2, track = t
            rows.append(
                f"{frame},{int(track)},{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f},1,-1,-1,-1"
            )
    return rows


def test_bytetracks_thresholds_are_its_own_and_scores_below_them_are_named(tmp_path, capsys):
    _two_sequences(tmp_path / "data")
    argv = ["track", tmp_path / "data", "--out", tmp_path / "out"]
    status, _, err = _main([*argv, "--high-threshold", "0.5"], capsys)
    assert status == 2 and "high-threshold: a threshold of ByteTrack's; give --tracker byte" in err
    assert not (tmp_path / "out").exists()
    # the detections score 0.9: from 0.95 ByteTrack would start no track, and says so
    with pytest.warns(UserWarning, match=r"det.txt: no detection scores 0.95 or more \(its"):
        status, out, _ = _main([*argv, "--tracker", "byte", "--high-threshold", "0.95"], capsys)
    assert status == 0
    assert "A: 10 frames, 0 tracks" in out
    status, out, _ = _main([*argv, "--tracker", "byte", "--high-threshold", "0.8"], capsys)
    assert status == 0 and "A: 10 frames, 2 tracks" in out


def test_a_folder_of_sequences_is_tracked_into_a_file_each(tmp_path, capsys):
    _two_sequences(tmp_path / "data")
    status, out, err = _main(["track", tmp_path / "data", "--out", tmp_path / "out"], capsys)
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == ["A.txt", "B.txt"]
    for name, det in [("A", "A/det/det.txt"), ("B", "B/det.txt")]:
        written = (tmp_path / "out" / f"{name}.txt").read_text().splitlines()
        assert written == _expected_rows(tmp_path / "data" / det)
    a = mot.read_table(tmp_path / "out" / "A.txt", frame_order=False)
    assert set(a.ids.tolist()) == {1, 2} and a.frames.tolist() == sorted(a.frames.tolist())
    b = mot.read_table(tmp_path / "out" / "B.txt", frame_order=False)
    assert set(b.ids.tolist()) == {1}  # a new tracker per sequence: ids from 1 again
    assert 5 not in b.frames  # the frame without detections reports no track
    lines = out.splitlines()
    assert lines[0].startswith("A: 10 frames, 2 tracks, ") and lines[0].endswith(" frames/s")
    assert lines[1].startswith("B: 8 frames, 1 tracks, ")
    assert lines[2:] == [
        f"wrote {tmp_path / 'out' / 'A.txt'}",
        f"wrote {tmp_path / 'out' / 'B.txt'}",
    ]
    assert err == ""


def test_with_ground_truth_the_scores_are_printed_per_sequence_and_overall(tmp_path, capsys):
    require_module("motmetrics", TEST_EXTRA)
    _two_sequences(tmp_path / "data")
    argv = ["track", tmp_path / "data", "--out", tmp_path / "out", "--gt", tmp_path / "data"]
    status, out, err = _main(argv, capsys)
    assert status == 0, err
    table = out.splitlines()[4:]
    assert table[0].split() == ["sequence", "MOTA", "MOTP", "IDF1", "IDsw", "FP", "FN", "HOTA"]
    rows = {line.split()[0]: line.split()[1:] for line in table[1:4]}
    # A: every object tracked in every frame. B: missed in frame 5 (no detection) and in
    # frames 6 and 7, while its track's streak of hits builds up to --min-hits 3 again
    assert rows["A"][0] == "100.0%" and rows["A"][2] == "100.0%" and rows["A"][3:6] == ["0"] * 3
    assert rows["B"][0] == "62.5%" and rows["B"][3:6] == ["0", "0", "3"]
    assert rows["OVERALL"][0] == f"{100 * (1 - 3 / 28):.1f}%" and rows["OVERALL"][3:6] == [
        "0",
        "0",
        "3",
    ]
    assert float(rows["A"][1].rstrip("%")) > 90  # MOTP: the mean IoU of the matches
    if metrics.trackeval_hota() is None:
        assert table[4] == f"HOTA needs TrackEval: pip install {metrics.TRACKEVAL}"
    else:
        assert float(rows["A"][6].rstrip("%")) > 80 and len(table) == 4


def test_without_trackeval_hota_is_left_out_with_the_pip_line(tmp_path, capsys, monkeypatch):
    require_module("motmetrics", TEST_EXTRA)
    _two_sequences(tmp_path / "data")
    monkeypatch.setitem(sys.modules, "trackeval", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "trackeval.metrics", None)
    argv = ["track", tmp_path / "data" / "A", "--out", tmp_path / "out", "--gt"]
    status, out, err = _main([*argv, tmp_path / "data" / "A" / "gt" / "gt.txt"], capsys)
    assert status == 0, err
    lines = out.splitlines()
    assert lines[3].split() == ["A", "100.0%", lines[3].split()[2], "100.0%", "0", "0", "0", "-"]
    assert lines[-1] == f"HOTA needs TrackEval: pip install {metrics.TRACKEVAL}"


def test_an_empty_detections_file_is_a_sequence_without_tracks(tmp_path, capsys):
    det = _write(tmp_path / "S" / "det" / "det.txt", [])
    status, out, err = _main(["track", det, "--out", tmp_path / "out"], capsys)
    assert status == 0 and out.splitlines()[0] == "S: 0 frames, 0 tracks", err
    assert (tmp_path / "out" / "S.txt").read_text() == ""


def test_a_sequence_that_fails_writes_nothing(tmp_path, capsys, monkeypatch):
    _two_sequences(tmp_path / "data")
    bad = tmp_path / "data" / "B" / "det.txt"
    bad.write_text(bad.read_text() + "9,-1,1,2,3\n")
    n = len(bad.read_text().splitlines())
    status, _, err = _main(["track", tmp_path / "data", "--out", tmp_path / "out"], capsys)
    assert status == 2 and err.startswith(f"keras-zoo track: error: {bad}:{n}: 5 columns"), err
    assert not (tmp_path / "out").exists()

    # a failure while tracking the second sequence: the first one's file is not written either,
    # and what OUT held is left as it was
    bad.write_text("".join(line + "\n" for line in bad.read_text().splitlines()[:-1]))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "A.txt").write_text("earlier\n")
    calls = []

    class Failing(Sort):
        def update(self, detections):
            calls.append(1)
            if len(calls) > 12:
                raise RuntimeError("tracker failed")
            return super().update(detections)

    monkeypatch.setattr("keras_zoo.track.Sort", Failing)
    status, out, err = _main(["track", tmp_path / "data", "--out", tmp_path / "out"], capsys)
    assert status == 2 and err.startswith("keras-zoo track: error: tracker failed"), err
    assert os.listdir(tmp_path / "out") == ["A.txt"] and out == ""
    assert (tmp_path / "out" / "A.txt").read_text() == "earlier\n"
    assert [p for p in os.listdir(tmp_path) if p.startswith(".keras_zoo-")] == []


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--max-age", "-1"], "argument --max-age: expected an integer >= 0, got '-1'"),
        (["--iou-threshold", "1.5"], "argument --iou-threshold: expected a number from 0 to 1"),
        (["--tracker", "deep"], "argument --tracker: invalid choice: 'deep'"),
    ],
)
def test_bad_arguments_are_argparse_errors(tmp_path, capsys, argv, expected):
    with pytest.raises(SystemExit) as done:
        cli.main(["track", str(tmp_path), "--out", str(tmp_path / "o"), *argv])
    assert done.value.code == 2
    assert capsys.readouterr().err.startswith(f"keras-zoo track: error: {expected}")


def test_bad_paths_and_a_missing_library_are_one_line_errors(tmp_path, capsys, monkeypatch):
    _two_sequences(tmp_path / "data")
    out = tmp_path / "out"
    cases = [
        (["track", tmp_path / "none", "--out", out], f"{tmp_path / 'none'}: no such file"),
        (["track", tmp_path, "--out", out], f"{tmp_path}: no sequence: expected det.txt"),
        (
            ["track", tmp_path / "data", "--out", out, "--gt", tmp_path / "data" / "A"],
            f"{tmp_path / 'data' / 'A'}: no gt file for sequence 'B'",
        ),
    ]
    missing = f"scoring against ground truth needs py-motmetrics: pip install {metrics.MOTMETRICS}"
    cases.append((["track", tmp_path / "data", "--out", out, "--gt", tmp_path / "data"], missing))
    for argv, expected in cases:
        if expected == missing:
            monkeypatch.setitem(sys.modules, "motmetrics", None)  # as if it were not installed
        status, _, err = _main(argv, capsys)
        assert status == 2 and err.startswith(f"keras-zoo track: error: {expected}"), err
        assert len(err.splitlines()) == 1
    assert not out.exists()


def test_skipped_boxes_are_reported_in_a_warning(tmp_path, capsys):
    det = _write(tmp_path / "S" / "det.txt", ["1,-1,1,2,3,4,0.9", "2,-1,1,2,0,4,0.9"])
    with pytest.warns(UserWarning, match=rf"^{det}: 1 boxes skipped: a width or height"):
        status, out, _ = _main(["track", det, "--out", tmp_path / "out"], capsys)
    assert status == 0 and out.startswith("S: 2 frames, 1 tracks")


LIGHT = """
import contextlib, io, json, sys
from keras_zoo import cli, commands
commands.COMMANDS += ("track",) * ("track" not in commands.COMMANDS)
commands.WITHOUT_TENSORFLOW += ("track",) * ("track" not in commands.WITHOUT_TENSORFLOW)
statuses = []
for argv in %r:
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            statuses.append(cli.main(argv))
        except SystemExit as done:
            statuses.append(done.code)
heavy = sorted(m for m in ("tensorflow", "keras", "torch", "jax") if m in sys.modules)
print(json.dumps({"statuses": statuses, "heavy": heavy}))
"""


def test_help_argument_errors_and_tracking_import_no_tensorflow(tmp_path):
    _two_sequences(tmp_path / "data")
    out = str(tmp_path / "out")
    argvs = [
        ["track", "--help"],
        ["track", "x", "--out", out, "--min-hits", "x"],
        ["track", str(tmp_path / "data"), "--out", out],
    ]
    done = subprocess.run(
        [sys.executable, "-c", LIGHT % (argvs,)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout) == {"statuses": [0, 2, 0], "heavy": []}


# -- scores against py-motmetrics' own data ----------------------------------------------------

# motmetrics 1.4.0, motmetrics/tests/test_metrics.py, test_motchallenge_files: its summary of
# data/TUD-Campus and data/TUD-Stadtmitte (gt.txt against test.txt, "iou", distth=0.5) checked
# with atol=1e-3, here its columns idf1, num_false_positives, num_misses, num_switches, mota and
# motp (a distance, 1 - IoU)
MOTMETRICS_EXPECTED = {
    "TUD-Campus": (0.557659, 13, 150, 7, 0.526462, 0.277201),
    "TUD-Stadtmitte": (0.644619, 45, 452, 7, 0.564014, 0.345904),
    metrics.OVERALL: (0.624296, 58, 602, 14, 0.555116, 0.330177),
}


def _tud_pairs():
    mm = require_module("motmetrics", TEST_EXTRA)
    data = os.path.join(os.path.dirname(mm.__file__), "data")
    return [
        (
            name,
            metrics.ground_truth(
                mot.read_table(os.path.join(data, name, "gt.txt"), frame_order=False)
            ),
            mot.read_table(os.path.join(data, name, "test.txt"), frame_order=False),
        )
        for name in ("TUD-Campus", "TUD-Stadtmitte")
    ]


def test_motmetrics_shipped_mot15_data_scores_as_its_own_tests_expect():
    scores = metrics.score_sequences(_tud_pairs(), hota=False)
    assert list(scores) == ["TUD-Campus", "TUD-Stadtmitte", metrics.OVERALL]
    # NumPy 2 has no asfarray: it is lent to motmetrics only while motmetrics runs
    assert hasattr(np, "asfarray") == (np.lib.NumpyVersion(np.__version__) < "2.0.0")
    for name, (idf1, fp, fn, idsw, mota, motp_distance) in MOTMETRICS_EXPECTED.items():
        s = scores[name]
        assert (s.false_positives, s.misses, s.id_switches) == (fp, fn, idsw), name
        np.testing.assert_allclose(
            [s.idf1, s.mota, s.motp], [idf1, mota, 1 - motp_distance], atol=1e-6, err_msg=name
        )
        assert s.hota is None


def test_hota_s_input_gives_trackeval_the_clear_and_identity_scores_motmetrics_expects():
    """HOTA has no published figure for this data; TrackEval's own CLEAR and Identity metrics,
    given the very input that HOTA is given, reproduce py-motmetrics' expected figures, which
    checks that input (ids, frames, IoU matrices)."""
    require_module("trackeval", TRACKEVAL_INSTALL)
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # TrackEval prints its configuration
        from trackeval.metrics import CLEAR, Identity

        clear, identity = CLEAR(), Identity()
    pairs = _tud_pairs()
    scores = metrics.score_sequences(pairs)
    for name, gt, results in pairs:
        data = metrics._trackeval_data(gt, results)
        c, i = clear.eval_sequence(data), identity.eval_sequence(data)
        idf1, fp, fn, idsw, mota, _ = MOTMETRICS_EXPECTED[name]
        assert (c["CLR_FP"], c["CLR_FN"], c["IDSW"]) == (fp, fn, idsw), name
        np.testing.assert_allclose([i["IDF1"], c["MOTA"]], [idf1, mota], atol=1e-6)
        assert 0.3 < scores[name].hota < 0.5, scores[name]
    # a perfect tracker scores 1
    gt = pairs[0][1]
    assert metrics.score_sequences([("same", gt, gt)])["same"].hota == pytest.approx(1.0)


# -- the command against sort.py on py-motmetrics' MOT15 sequences ------------------------------


def _mot15_detections(root):
    """A MOTChallenge folder, SEQ/det/det.txt, for every MOT15 sequence py-motmetrics ships:
    each frame's boxes of its gt.txt and test.txt together (near-duplicates, which make the
    association choose), with scores, about one box in seven left out (tracks lost and found again)
    and frames without detections (10, 30, ...)."""
    mm = require_module("motmetrics", TEST_EXTRA)
    data = os.path.join(os.path.dirname(mm.__file__), "data")
    names = sorted(n for n in os.listdir(data) if os.path.isfile(os.path.join(data, n, "gt.txt")))
    assert {"TUD-Campus", "TUD-Stadtmitte"} <= set(names), names
    rng = np.random.default_rng(0)
    for name in names:
        rows = np.concatenate(
            [np.loadtxt(os.path.join(data, name, f), delimiter=",") for f in ("gt.txt", "test.txt")]
        )
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
        last = rows[:, 0].max()
        rows = rows[(rows[:, 0] % 20 != 10) | (rows[:, 0] == last)]  # empty frames on the way
        rows = rows[(rng.random(len(rows)) >= 0.15) | (rows[:, 0] == last)]  # missed boxes
        scores = rng.uniform(0.05, 1.0, len(rows))
        _write(
            root / name / "det" / "det.txt",
            [
                f"{f:.0f},-1,{x},{y},{w},{h},{s:.3f},-1,-1,-1"
                for (f, _, x, y, w, h), s in zip(rows[:, :6], scores)
            ],
        )
    return names


def _sort_py_rows(ref, det_path):
    """{frame: {id: [x, y, w, h]}} as sort.py's main loop computes them for a det.txt: frames 1
    to the last, empty ones included, boxes x, y, w, h -> x1, y1, x2, y2 and back."""
    seq_dets = np.loadtxt(det_path, delimiter=",")
    ref.KalmanBoxTracker.count = 0  # ids from 1 for this sequence, as a fresh sort.py run
    tracker = ref.SortTracker()  # sort.py's defaults: max_age 1, min_hits 3, iou 0.3
    out = {}
    for frame in range(1, int(seq_dets[:, 0].max()) + 1):
        dets = seq_dets[seq_dets[:, 0] == frame, 2:7].copy()
        dets[:, 2:4] += dets[:, 0:2]
        dets = np.hstack([dets, np.zeros((len(dets), 1))])  # this package wants a class column
        tracks = tracker.update(dets, None)
        assert len(set(tracks[:, 4])) == len(tracks)
        out[frame] = {int(d[4]): [d[0], d[1], d[2] - d[0], d[3] - d[1]] for d in tracks.tolist()}
    return out


def _file_rows(path):
    """{frame: {id: [x, y, w, h]}} of a results file, with its line format checked."""
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    assert table.shape[1] == 10 and (table[:, 6:] == [1, -1, -1, -1]).all(), path
    out: dict = {}
    for f, i, *box in table[:, :6].tolist():
        rows = out.setdefault(int(f), {})
        assert int(i) not in rows, f"{path}: frame {f:.0f}: id {i:.0f} twice"
        rows[int(i)] = box
    return out


def _assert_same_tracks(expected, got, where):
    """The same rows in every frame once sort.py's ids are mapped one to one onto the file's
    (the mapping is taken where an id first appears, from the row with the same box), boxes
    equal to 1e-2 px."""
    assert set(got) <= set(expected), f"{where}: frames {sorted(set(got) - set(expected))}"
    mapping: dict[int, int] = {}
    for frame, want in expected.items():
        have = got.get(frame, {})
        for ref_id, box in want.items():
            at = f"{where}: frame {frame}: sort.py's id {ref_id}"
            if ref_id not in mapping:
                same = [i for i, b in have.items() if np.abs(np.subtract(b, box)).max() <= 1e-2]
                assert len(same) == 1, f"{at} {box}: {len(same)} rows with its box"
                mapping[ref_id] = same[0]
            mine = mapping[ref_id]
            assert mine in have, f"{at}: no row of id {mine}"
            diff = np.abs(np.subtract(have[mine], box)).max()
            assert diff <= 1e-2, f"{at} {box}: id {mine} {have[mine]}, {diff:.3g} px apart"
        assert len(have) == len(want), f"{where}: frame {frame}: {len(have)} rows, {len(want)}"
    assert len(set(mapping.values())) == len(mapping), f"{where}: two sort.py ids map to one"
    return mapping


def test_default_tracking_of_mot15_detections_writes_sort_py_s_tracks(tmp_path, capsys):
    """`keras-zoo track` with its defaults on a folder of MOT15 sequences writes, for each,
    what sort.py computes from the same det.txt: the same rows per frame, boxes equal to the
    file's 2 decimals, and ids in one-to-one correspondence."""
    ref = require_module("sort.tracker", TEST_EXTRA)
    names = _mot15_detections(tmp_path / "data")
    status, _, err = _main(["track", tmp_path / "data", "--out", tmp_path / "out"], capsys)
    assert status == 0, err
    assert sorted(os.listdir(tmp_path / "out")) == [f"{n}.txt" for n in names]
    for name in names:
        expected = _sort_py_rows(ref, tmp_path / "data" / name / "det" / "det.txt")
        got = _file_rows(tmp_path / "out" / f"{name}.txt")
        mapping = _assert_same_tracks(expected, got, name)
        assert len(mapping) > 10 and sum(map(len, expected.values())) > 100, name
        assert any(not rows for rows in expected.values()), name  # empty frames were run
