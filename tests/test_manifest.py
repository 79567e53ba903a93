"""Manifest reading: hostile CSVs built here, and the shared real manifests when present."""

from __future__ import annotations

import os
import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from posterlab.errors import InputError
from posterlab.manifest import (
    MAX_LINE_BYTES,
    MAX_TITLE_CHARS,
    SNIFF_BYTES,
    PosterRef,
    count_rows,
    duplicate_ids,
    read_manifest,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
HEADER = "imdbId,Title,IMDB Score,Genre,Poster\n"
URL = "https://img.example.org/p.jpg"


def write(folder: Path, text: str | bytes, name: str = "manifest.csv") -> Path:
    path = folder / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def rows(path: Path, **kwargs: object) -> list[PosterRef]:
    with read_manifest(path, **kwargs) as reader:  # type: ignore[arg-type]
        return list(reader)


def code(ref: PosterRef) -> str | None:
    return ref.error.split(":")[0] if ref.error else None


def one(folder: Path, line: str, header: str = HEADER) -> PosterRef:
    (ref,) = rows(write(folder, header + line + "\n"))
    return ref


# -- whole-file cases ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", HEADER, HEADER + "\n\n"])
def test_an_empty_or_header_only_file_yields_nothing_and_says_so(tmp_path, text):
    reader = read_manifest(write(tmp_path, text))
    assert list(reader) == []
    assert reader.rows_read == 0


def test_a_missing_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        read_manifest(tmp_path / "nope.csv")
    assert info.value.code == "manifest-not-found"


def test_a_header_without_an_id_column_is_refused_with_the_accepted_names(tmp_path):
    with pytest.raises(InputError) as info:
        read_manifest(write(tmp_path, "movie,Title,Poster\n1,A,http://x/\n"))
    assert info.value.code == "manifest-missing-id-column"
    assert "imdbId, imdb_id, id" in str(info.value)


def test_a_header_without_a_poster_column_needs_a_poster_dir(tmp_path):
    path = write(tmp_path, "id,title\n1,A\n")
    with pytest.raises(InputError) as info:
        read_manifest(path)
    assert info.value.code == "manifest-missing-poster-column"
    (tmp_path / "1.jpg").write_bytes(b"jpeg")
    assert rows(path, poster_dir=tmp_path)[0].source == str((tmp_path / "1.jpg").resolve())


def test_a_utf16_manifest_is_refused_with_advice(tmp_path):
    with pytest.raises(InputError, match="UTF-8") as info:
        read_manifest(write(tmp_path, (HEADER + f"1,A,7,Drama,{URL}\n").encode("utf-16")))
    assert info.value.code == "manifest-encoding"


def test_columns_match_case_insensitively_by_alias_and_extra_columns_are_ignored(tmp_path):
    path = write(tmp_path, "Notes,IMDB_ID,TITLE,Score,GENRES,poster_url,Budget\n"
                           f"hello,tt0114709,Toy Story (1995),8.3,Animation|Comedy|,{URL},30M\n")
    reader = read_manifest(path)
    assert list(reader) == [PosterRef(1, "114709", "Toy Story (1995)", 8.3,
                                      ("Animation", "Comedy"), URL)]
    assert reader.columns == {"id": "IMDB_ID", "title": "TITLE", "rating": "Score",
                              "genres": "GENRES", "poster_url": "poster_url"}


# -- encodings ----------------------------------------------------------------------------


def test_a_utf8_bom_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path, b"\xef\xbb\xbf" + (HEADER + f"1,Caf\u00e9,7,Drama,{URL}\n").encode())
    reader = read_manifest(path)
    (ref,) = reader
    assert (reader.encoding, ref.imdb_id, ref.title) == ("utf-8-sig", "1", "Caf\u00e9")


def test_a_latin1_file_keeps_its_mojibake_as_written(tmp_path):
    body = (HEADER.encode() + b"113828,Les mis\xed\xa9rables (1995),7.5,Drama,u\n"
            b"107642,Caf\xe9 au lait (1993),6.2,Comedy,u\n").replace(b",u\n", f",{URL}\n".encode())
    reader = read_manifest(write(tmp_path, body))
    titles = [ref.title for ref in reader]
    assert reader.encoding == "latin-1"
    assert titles == ["Les mis\u00ed\u00a9rables (1995)", "Caf\u00e9 au lait (1993)"]


def test_a_utf8_file_with_a_latin1_byte_deep_inside_is_read_line_by_line(tmp_path):
    filler = "".join(f"{i},Title {i},5,Drama,{URL}\n" for i in range(1, 30_000))
    assert len(filler) > SNIFF_BYTES  # the bad byte is past what decides the encoding
    body = (HEADER + "99999,Am\u00e9lie,8.3,Comedy," + URL + "\n" + filler).encode()
    body += b"88888,Caf\xe9,6.2,Comedy," + URL.encode() + b"\n"
    reader = read_manifest(write(tmp_path, body))
    refs = list(reader)
    assert reader.encoding == "utf-8" and reader.repaired_rows == [len(refs)]
    assert (refs[0].title, refs[-1].title) == ("Am\u00e9lie", "Caf\u00e9")
    assert all(ref.ok for ref in refs)


# -- rows ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("114709", "114709"), ("tt0114709", "114709"), ("TT114709", "114709"),
    (" 0114709 ", "114709"), ("0" * 19 + "7", "7"),
])
def test_ids_are_normalised_so_one_movie_has_one_id(tmp_path, raw, expected):
    ref = one(tmp_path, f'"{raw}",A,7,Drama,{URL}')
    assert ref.ok and ref.imdb_id == expected


@pytest.mark.parametrize(("raw", "expected_code"), [
    ("", "manifest-missing-id"), ("11 4709", "manifest-bad-id"), ("abc", "manifest-bad-id"),
    ("tt", "manifest-bad-id"), ("114709x", "manifest-bad-id"), ("0", "manifest-bad-id"),
    ("-5", "manifest-bad-id"), ("1" * 21, "manifest-bad-id"), ("\u0661\u0662", "manifest-bad-id"),
])
def test_a_bad_id_is_a_row_error_and_the_row_keeps_its_number(tmp_path, raw, expected_code):
    ref = one(tmp_path, f'"{raw}",A,7,Drama,{URL}')
    assert (ref.row, ref.imdb_id, code(ref), ref.title) == (1, None, expected_code, "A")


@pytest.mark.parametrize(("raw", "rating"), [("7.5", 7.5), ("0", 0.0), ("10", 10.0), ("", None)])
def test_ratings_in_range_or_missing_are_fine(tmp_path, raw, rating):
    ref = one(tmp_path, f"1,A,{raw},Drama,{URL}")
    assert ref.ok and ref.rating == rating


@pytest.mark.parametrize("raw", ["abc", "7,5", "10.1", "-1", "nan", "inf", "1e3"])
def test_a_non_numeric_or_out_of_range_rating_is_a_row_error(tmp_path, raw):
    ref = one(tmp_path, f'1,A,"{raw}",Drama,{URL}')
    assert (code(ref), ref.imdb_id, ref.rating) == ("manifest-bad-rating", "1", None)


def test_a_row_without_any_poster_says_so(tmp_path):
    ref = one(tmp_path, "1,A,7,Drama,")
    assert ref.error == "manifest-no-poster: no poster: the row has neither poster_file nor " \
                        "Poster URL"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x/p.jpg", "poster.jpg"])
def test_a_poster_url_must_be_http(tmp_path, url):
    assert code(one(tmp_path, f"1,A,7,Drama,{url}")) == "manifest-bad-url"


def test_duplicate_ids_are_reported_as_they_are_and_can_be_found(tmp_path):
    path = write(tmp_path, HEADER + f"114709,A,7,,{URL}\n2,B,6,,{URL}\ntt0114709,A,7,,{URL}\n")
    refs = rows(path)
    assert [ref.imdb_id for ref in refs] == ["114709", "2", "114709"]
    assert duplicate_ids(refs) == {"114709": [1, 3]}


def test_quotes_and_newlines_inside_fields_survive_and_rows_count_records(tmp_path):
    path = write(tmp_path, HEADER + f'1,"He said ""hi""\nand left",7,Drama,{URL}\r\n'
                                    f'2,"B, the sequel",6,"Drama|\nComedy",{URL}\r\n')
    refs = rows(path)
    assert [(ref.row, ref.title, ref.genres) for ref in refs] == [
        (1, 'He said "hi" and left', ("Drama",)), (2, "B, the sequel", ("Drama", "Comedy"))]


def test_a_very_long_title_is_cut_and_a_very_long_url_refused(tmp_path):
    ref = one(tmp_path, f"1,{'T' * 5000},7,Drama,{URL}")
    assert ref.ok and ref.title == "T" * MAX_TITLE_CHARS
    assert code(one(tmp_path, f"1,A,7,Drama,{URL}?{'q' * 5000}")) == "manifest-bad-url"


def test_a_huge_field_or_line_is_one_row_error_and_reading_goes_on(tmp_path):
    huge_field = "x" * 200_000  # over csv's field limit, under the line cap
    huge_line = "y" * (MAX_LINE_BYTES + 10)
    path = write(tmp_path, HEADER + f"1,{huge_field},7,,{URL}\n2,{huge_line},7,,{URL}\n"
                                    f"3,C,7,,{URL}\n")
    refs = rows(path)
    assert [(ref.row, code(ref)) for ref in refs] == [
        (1, "manifest-bad-row"), (2, "manifest-bad-row"), (3, None)]
    assert refs[2].imdb_id == "3"


def test_limit_stops_after_that_many_rows_failed_ones_included(tmp_path):
    path = write(tmp_path, HEADER + f"x,A,7,,{URL}\n2,B,7,,{URL}\n3,C,7,,{URL}\n")
    assert [ref.row for ref in rows(path, limit=2)] == [1, 2]
    assert rows(path, limit=0) == []


def test_a_reader_closed_early_stops(tmp_path):
    path = write(tmp_path, HEADER + f"1,A,7,,{URL}\n2,B,7,,{URL}\n")
    with read_manifest(path) as reader:
        assert next(reader).row == 1
    assert list(reader) == []


# -- local posters ------------------------------------------------------------------------


@pytest.fixture
def posters(tmp_path: Path) -> Path:
    """tmp/data/{manifest here, posters/1.jpg, posters/inside.jpg -> 1.jpg}, tmp/secret.jpg."""
    folder = tmp_path / "data"
    (folder / "posters").mkdir(parents=True)
    (folder / "posters" / "1.jpg").write_bytes(b"jpeg")
    (folder / "posters" / "inside.jpg").symlink_to(folder / "posters" / "1.jpg")
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    (folder / "posters" / "escape.jpg").symlink_to(tmp_path / "secret.jpg")
    return folder


def local(folder: Path, poster_file: str, poster_url: str = "") -> PosterRef:
    header = "imdbId,Title,IMDB Score,Genre,Poster,poster_file\n"
    (ref,) = rows(write(folder, header + f'1,A,7,Drama,{poster_url},"{poster_file}"\n'))
    return ref


def test_a_local_poster_file_resolves_against_the_manifests_folder(posters):
    assert local(posters, "posters/1.jpg").source == str((posters / "posters/1.jpg").resolve())


def test_a_local_file_wins_over_a_url(posters):
    assert local(posters, "posters/1.jpg", URL).source == str(posters.resolve() / "posters/1.jpg")
    assert local(posters, "", URL).source == URL


def test_a_symlink_that_stays_inside_is_fine(posters):
    assert local(posters, "posters/inside.jpg").source == str(posters.resolve() / "posters/1.jpg")


@pytest.mark.parametrize("path", ["../secret.jpg", "posters/../../secret.jpg",
                                  "posters/escape.jpg", "/etc/passwd", "//etc/passwd"])
def test_paths_leaving_the_manifests_folder_are_refused(posters, path):
    ref = local(posters, path, URL)
    assert (code(ref), ref.source) == ("manifest-path-escape", None)


def test_a_path_with_a_nul_byte_is_a_row_error(posters):
    assert code(local(posters, "posters/1.jpg\x00.png")) == "manifest-bad-path"


def test_poster_dir_finds_id_dot_extension_and_overrides_the_poster_columns(tmp_path):
    folder = tmp_path / "dir"
    folder.mkdir()
    (folder / "114709.png").write_bytes(b"png")
    (folder / "2.JPG").write_bytes(b"jpg")
    (folder / "tt0000003.webp").write_bytes(b"webp")
    path = write(tmp_path, HEADER + f"tt0114709,A,7,,{URL}\n2,B,7,,{URL}\n"
                                    f"tt0000003,C,7,,{URL}\n4,D,7,,{URL}\n")
    refs = rows(path, poster_dir=folder)
    assert [ref.source for ref in refs[:3]] == [
        str(folder.resolve() / name) for name in ("114709.png", "2.JPG", "tt0000003.webp")]
    assert code(refs[3]) == "manifest-no-poster" and refs[3].source is None


def test_a_missing_poster_dir_is_an_input_error(tmp_path):
    with pytest.raises(InputError) as info:
        read_manifest(write(tmp_path, HEADER), poster_dir=tmp_path / "nope")
    assert info.value.code == "manifest-poster-dir-not-found"


def test_count_rows_counts_lines_without_the_header(tmp_path):
    assert count_rows(write(tmp_path, HEADER + "1,a\n2,b\n3,c")) == 3
    assert count_rows(write(tmp_path, HEADER + "1,a\n2,b\n")) == 2
    assert count_rows(write(tmp_path, "")) == 0


def traced_peak(path: Path, rows: int) -> int:
    """tracemalloc's peak, in bytes, while streaming the first ``rows`` rows of ``path``."""
    tracemalloc.start()
    try:
        reader = read_manifest(path, limit=rows)
        assert sum(1 for ref in reader if ref.ok) == rows
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.slow
def test_a_million_rows_stream_in_constant_memory(tmp_path):
    """Memory must not grow with the rows read.

    tracemalloc makes every allocation ~10x slower, so it watches two prefixes of the
    file (5k and 50k rows) rather than all of it: a cost of even 6 bytes a row would show
    as a difference. Then the whole million is streamed, untraced.
    """
    path = tmp_path / "big.csv"
    with path.open("w") as out:
        out.write(HEADER)
        for start in range(1, 1_000_000, 1000):
            out.write("".join(f"{i},Movie {i},{i % 101 / 10},Drama|Comedy,{URL}\n"
                              for i in range(start, start + 1000)))
    assert count_rows(path) == 1_000_000
    small, large = traced_peak(path, 5_000), traced_peak(path, 50_000)
    assert large < 4 * 2**20, f"peak {large / 2**20:.1f} MiB while streaming 50k rows"
    assert large - small < 256 * 2**10, f"{large - small} more bytes for 45k more rows"
    reader = read_manifest(path)
    failed = sum(1 for ref in reader if not ref.ok)
    assert (reader.rows_read, failed) == (1_000_000, 0)


# -- the shared real manifests ------------------------------------------------------------


def real(*parts: str) -> Path:
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared data set is not mounted next to the repo")
    return path


@pytest.mark.data
def test_every_row_of_the_shared_poster_index_resolves_to_an_existing_file():
    refs = rows(real("posters", "index.csv"))
    assert len(refs) == 2000
    assert all(ref.ok and ref.imdb_id and os.path.isfile(ref.source or "") for ref in refs)
    assert {Path(ref.source or "").name for ref in refs} == {f"{ref.imdb_id}.jpg" for ref in refs}


@pytest.mark.data
def test_moviegenre_streams_all_rows_with_its_known_flaws():
    reader = read_manifest(real("movie_genre", "MovieGenre.csv"))
    refs = list(reader)
    assert (reader.encoding, reader.rows_read, len(refs)) == ("latin-1", 40_108, 40_108)
    assert sum(ref.rating is None for ref in refs) == 48
    assert Counter(code(ref) for ref in refs) == {None: 40_108 - 725, "manifest-no-poster": 725}
    # "593 ids repeat": 593 ids occur on two rows each, i.e. 593 extra rows
    repeated = duplicate_ids(refs)
    assert len(repeated) == 593
    assert {len(found) for found in repeated.values()} == {2}
    assert len({ref.imdb_id for ref in refs}) == 40_108 - 593


# -- text hygiene -------------------------------------------------------------------------


def test_an_oversized_quoted_field_fails_its_row_and_the_next_row_is_intact(tmp_path):
    inner = "".join(f"{n},Inside {n},5,Drama,{URL}\n" for n in range(900, 6000))
    assert len(inner) > 131_072  # over the csv module's field limit
    path = write(tmp_path, HEADER + f'1,"{inner}",7,Drama,{URL}\n2,Real next,6,Drama,{URL}\n')
    refs = rows(path)
    assert [(ref.row, ref.imdb_id, code(ref)) for ref in refs] == [
        (1, None, "manifest-bad-row"), (2, "2", None)]
    assert refs[1].title == "Real next"
    assert "field larger than field limit" in refs[0].error


def test_a_quoted_field_longer_than_a_row_may_be_is_skipped_whole(tmp_path):
    inner = "x,y\n" * (MAX_LINE_BYTES // 4 + 10)
    path = write(tmp_path, HEADER + f'1,"{inner}",7,,{URL}\n2,B,6,,{URL}\n')
    assert [(ref.row, ref.imdb_id, code(ref)) for ref in rows(path)] == [
        (1, None, "manifest-bad-row"), (2, "2", None)]


def test_a_quote_never_closed_is_one_bad_row_that_names_its_lines(tmp_path):
    path = write(tmp_path, HEADER + f'1,A,7,,{URL}\n2,"B,6,,{URL}\n3,C,7,,{URL}\n')
    refs = rows(path)
    assert [(ref.row, code(ref)) for ref in refs] == [(1, None), (2, "manifest-bad-row")]
    assert "never closed" in refs[1].error and "lines 2-3" in refs[1].error


def test_a_small_mixed_utf8_and_latin1_file_is_decided_line_by_line(tmp_path):
    body = (HEADER.encode() + "1,Am\u00e9lie,8.3,Comedy,u\n".encode()
            + b"2,Caf\xe9 \x93noir\x94,6.2,Drama,u\n"
            + "3,Na\u00efve,7,Drama,u\n".encode()).replace(b",u\n", f",{URL}\n".encode())
    reader = read_manifest(write(tmp_path, body))
    titles = [ref.title for ref in reader]
    assert titles == ["Am\u00e9lie", "Caf\u00e9 \u201cnoir\u201d", "Na\u00efve"]
    assert (reader.encoding, reader.repaired_rows, reader.repaired) == ("utf-8", [2], 1)


def test_control_characters_leave_titles_and_genres_and_fail_urls_and_paths(tmp_path):
    path = write(tmp_path, "imdbId,Title,IMDB Score,Genre,Poster,poster_file\n"
                 f'1,"A\x00b\x1b[31m\u202ered\r\nline",7,"Dra\x00ma|\x07Comedy",{URL},\n'
                 f"2,B,7,Drama,{URL}/\x1b]8;;http://evil\x07,\n"
                 f"3,C,7,Drama,,posters/a\x1bb.jpg\n")
    one_, two, three = rows(path)
    assert (one_.ok, one_.title, one_.genres) == (True, "Ab[31mred line", ("Drama", "Comedy"))
    assert code(two) == "manifest-bad-url" and "\\x1b" in two.error and "\x1b" not in two.error
    assert code(three) == "manifest-bad-path" and "\x1b" not in three.error
