"""Saving and loading models in a format that executes nothing.

- :mod:`.format`: the file itself: the zip of ``.npy`` members and the JSON header, their
  checksums, and bounded reads of the members (format versions 1 and 2);
- :mod:`.registry`: the saveable classes by name, and what each must provide;
- :mod:`.loading`: :func:`load`, every check of a file before anything is built;
- :mod:`.saving`: :func:`save`, the same checks on the bytes before they are written
  atomically.

Everything is imported from here; patch a name in the submodule that uses it.
"""

from .format import FORMAT_NAME as FORMAT_NAME
from .format import FORMAT_VERSION, ModelFileError
from .format import HEADER as HEADER
from .format import _checksum as _checksum  # for the tests that forge files
from .format import _header_checksum as _header_checksum
from .format import _seal as _seal
from .loading import load
from .registry import json_value as json_value
from .registry import register
from .registry import registered as registered
from .saving import save

# Exceptions pickle (and print) by module: keep the public path the one it always was.
ModelFileError.__module__ = __name__

__all__ = ["ModelFileError", "save", "load", "register", "FORMAT_VERSION"]
