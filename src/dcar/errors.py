"""Errors meant for users: the CLI prints them as one line and exits with status 2."""


class DcarError(Exception):
    """A problem with the user's input (file, entry, option) that we can explain in one line."""


class DataError(DcarError):
    """A data file or entry cannot be read. The message names the file and the entry."""


class ModelSpecError(DcarError):
    """A model spec string cannot be resolved to a backbone."""
