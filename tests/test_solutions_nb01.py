"""The reference solutions of 01_dtu_on_disk's exercises give what the package's readers give."""

from __future__ import annotations

import numpy as np

from deltaz.course import exercises
from deltaz.io.dtu import formats


def test_parse_intrinsics_is_read_cam_files_intrinsics(tmp_path):
    for i, (args, _) in enumerate(exercises.exercise("parse_intrinsics").cases()):
        path = tmp_path / f"{i:08d}_cam.txt"
        path.write_bytes(args[0].encode())
        got = exercises.exercise("parse_intrinsics").reference(*args)
        assert np.allclose(got, formats.read_cam_file(path).intrinsics)


def test_decode_pfm_is_read_pfm(tmp_path):
    for i, (args, _) in enumerate(exercises.exercise("decode_pfm").cases()):
        path = tmp_path / f"depth_{i}.pfm"
        path.write_bytes(args[0])
        got = exercises.exercise("decode_pfm").reference(*args)
        assert got.dtype == np.float32 and np.array_equal(got, formats.read_pfm(path))


def test_decode_pfm_reads_what_write_pfm_wrote(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) + 500
    for little in (True, False):
        formats.write_pfm(tmp_path / "d.pfm", image, little_endian=little)
        assert np.array_equal(exercises.exercise("decode_pfm").reference((tmp_path / "d.pfm").read_bytes()), image)


def test_parse_pair_line_is_a_row_of_read_pair_file(tmp_path):
    for args, _ in exercises.exercise("parse_pair_line").cases():
        line = args[0].strip()
        k = int(line.split()[0])
        sources = {int(tok) for tok in line.split()[1::2]}
        ref = next(v for v in range(k + 2) if v not in sources)  # a reference id that is not its own source
        path = tmp_path / "pair.txt"
        path.write_text(f"1\n{ref}\n{line}\n")
        want = formats.read_pair_file(path)[ref]
        got = exercises.exercise("parse_pair_line").reference(*args)
        assert [s for s, _ in got] == [s for s, _ in want] and np.allclose([c for _, c in got], [c for _, c in want])
