"""Exercises of ``01_dtu_on_disk``: reading DTU's three text/binary formats by hand.

Each reference gives the same answer as the package's reader (``tests/test_solutions_nb01.py`` checks it):
:func:`parse_intrinsics` as ``read_cam_file(...).intrinsics``, :func:`decode_pfm` as ``read_pfm`` and
:func:`parse_pair_line` as one row of ``read_pair_file``. The package's readers also validate everything;
the exercises keep only the idea.
"""

from __future__ import annotations

import numpy as np

from deltaz.course.solutions.base import Case, Exercise

__all__ = ["EXERCISES", "decode_pfm", "parse_intrinsics", "parse_pair_line"]


def parse_intrinsics(cam_text: str) -> np.ndarray:
    """``K`` ``(3, 3)`` float64 from a cam file's text: the three rows after the line ``intrinsic``.

    Blank lines (and CRLF line endings) may appear anywhere: find the header, do not count lines.
    """
    lines = [line.strip() for line in cam_text.splitlines() if line.strip()]
    start = lines.index("intrinsic") + 1
    return np.array([[float(x) for x in line.split()] for line in lines[start : start + 3]])


def _wrong_parse_intrinsics(cam_text: str) -> np.ndarray:
    """The typical mistake: the nine numbers after ``intrinsic`` filled in column by column (``Kᵀ``)."""
    tokens = cam_text.split()
    start = tokens.index("intrinsic") + 1
    return np.array([float(x) for x in tokens[start : start + 9]]).reshape(3, 3, order="F")


def decode_pfm(data: bytes) -> np.ndarray:
    """A one-channel PFM file's bytes → ``(H, W)`` float32 array, row 0 = the TOP of the image.

    Header: ``Pf``, ``width height``, scale (negative = little-endian); then the rows bottom to top.
    """
    header = data.split(b"\n", 3)[:3]
    width, height = (int(n) for n in header[1].split())
    dtype = "<f4" if float(header[2]) < 0 else ">f4"
    offset = sum(len(line) + 1 for line in header)
    rows = np.frombuffer(data, dtype=dtype, count=width * height, offset=offset).reshape(height, width)
    return rows[::-1].astype(np.float32)


def _wrong_decode_pfm(data: bytes) -> np.ndarray:
    """The typical mistake: the rows are returned as stored, so the image is upside down."""
    header = data.split(b"\n", 3)[:3]
    width, height = (int(n) for n in header[1].split())
    dtype = "<f4" if float(header[2]) < 0 else ">f4"
    offset = sum(len(line) + 1 for line in header)
    rows = np.frombuffer(data, dtype=dtype, count=width * height, offset=offset).reshape(height, width)
    return rows.astype(np.float32)


def parse_pair_line(line: str) -> list[tuple[int, float]]:
    """A ``pair.txt`` source line ``k src₁ score₁ … src_k score_k`` → ``[(src₁, score₁), …]`` (k pairs)."""
    tokens = line.split()
    k = int(tokens[0])
    return [(int(tokens[1 + 2 * i]), float(tokens[2 + 2 * i])) for i in range(k)]


def _wrong_parse_pair_line(line: str) -> list[tuple[int, float]]:
    """The typical mistake: pairing tokens from the first one, so the count ``k`` is read as a view id."""
    tokens = line.split()
    return [(int(float(a)), float(b)) for a, b in zip(tokens[0::2], tokens[1::2])]


def _cam_text(K: np.ndarray, E: np.ndarray, blank_lines: int, newline: str) -> str:
    """A cam file's text with ``blank_lines`` empty lines between the blocks and the given line ending."""
    def block(title, M):
        return [title, *(" ".join(f"{x:.10g}" for x in row) for row in M)]

    rows = [*block("extrinsic", E), *[""] * blank_lines, *block("intrinsic", K), *[""] * blank_lines,
            "425 2.5 192 931.15"]
    return newline.join(rows) + newline


def _intrinsics_cases() -> list[Case]:
    rng = np.random.default_rng(1)
    cases = []
    for blank_lines, newline in [(1, "\n"), (0, "\n"), (1, "\r\n"), (2, "\n")]:
        fx, fy = rng.uniform(300, 3000, size=2)
        K = np.array([[fx, 0.0, rng.uniform(60, 900)], [0.0, fy, rng.uniform(50, 700)], [0.0, 0.0, 1.0]])
        E = np.vstack([np.hstack([np.eye(3), rng.uniform(-300, 300, (3, 1))]), [0, 0, 0, 1]])
        cases.append(((_cam_text(K, E, blank_lines, newline),), {}))
    return cases


def _pfm_bytes(image: np.ndarray, little_endian: bool) -> bytes:
    """A PFM file holding ``image`` (row 0 = top), stored bottom row first."""
    H, W = image.shape
    header = f"Pf\n{W} {H}\n{-1.0 if little_endian else 1.0}\n".encode()
    return header + image[::-1].astype("<f4" if little_endian else ">f4").tobytes()


def _pfm_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    cases = []
    for (H, W), little in [((4, 5), True), ((6, 3), False), ((10, 10), True)]:
        image = rng.uniform(400, 900, (H, W)).astype(np.float32)
        image[rng.random((H, W)) < 0.2] = 0.0  # holes
        cases.append(((_pfm_bytes(image, little),), {}))
    return cases


def _pair_cases() -> list[Case]:
    return [
        (("10 1 0.8026 10 0.7722 9 0.7138 8 0.5288 2 0.4966 7 0.3232 3 0.2568 12 0.2456 11 0.2428 13 0.1969",), {}),
        (("3 10 2346.41 1 2036.53 9 1243.89 ",), {}),  # real DTU's scores, with a trailing space
        (("2 5 1.5 0 0.25\r\n",), {}),
        (("1 48 0.1",), {}),
    ]


EXERCISES = (
    Exercise(
        name="parse_intrinsics",
        notebook="01_dtu_on_disk",
        reference=parse_intrinsics,
        cases=_intrinsics_cases,
        mistake=_wrong_parse_intrinsics,
        hint="keep the non-empty lines (stripped), find the line 'intrinsic' (do not count lines: blank lines "
        "vary), and read the three lines after it as the three ROWS of K: fx s cx / 0 fy cy / 0 0 1.",
    ),
    Exercise(
        name="decode_pfm",
        notebook="01_dtu_on_disk",
        reference=decode_pfm,
        cases=_pfm_cases,
        mistake=_wrong_decode_pfm,
        hint="the header is three lines (Pf / 'W H' / scale); a negative scale means little-endian '<f4'; the "
        "rows are stored bottom to top, so flip them with [::-1] before returning.",
        rtol=0.0,
        atol=0.0,
    ),
    Exercise(
        name="parse_pair_line",
        notebook="01_dtu_on_disk",
        reference=parse_pair_line,
        cases=_pair_cases,
        mistake=_wrong_parse_pair_line,
        hint="the first token is the number k of sources; then come k pairs 'view_id score': "
        "tokens[1], tokens[2], then tokens[3], tokens[4], …",
    ),
)
