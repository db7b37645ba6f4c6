"""The normalisation that makes two dumps of one schema byte-identical."""

from __future__ import annotations

from alumdb import schema_dump


def test_volatile_lines_are_removed_and_the_rest_kept() -> None:
    dump = (
        "\\restrict 4kQx9\n"
        "--\n-- PostgreSQL database dump\n--\n\n"
        "-- Dumped from database version 15.14 (Debian 15.14-0+deb12u1)\n"
        "-- Dumped by pg_dump version 15.14 (Debian 15.14-0+deb12u1)\n"
        "CREATE TABLE public.notes (id bigint);\n"
        "-- a comment that mentions \\restrict is kept\n"
        "\\unrestrict 4kQx9\n"
    )
    assert schema_dump.normalise(dump) == (
        "--\n-- PostgreSQL database dump\n--\n\n"
        "CREATE TABLE public.notes (id bigint);\n"
        "-- a comment that mentions \\restrict is kept\n"
    )
