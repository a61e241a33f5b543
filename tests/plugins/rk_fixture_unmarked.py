"""Defines a hook function but forgets @hookimpl."""


def register_scorers(register):
    register("unmarked", lambda **options: None)
