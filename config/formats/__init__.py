"""Our corrections to Django's date formats, per language (FORMAT_MODULE_PATH).

A module here overrides only the formats it names; the rest come from Django's own.
"""
