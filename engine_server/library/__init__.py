"""The style library: styles kept as TFRecords, packs, and the Gram cache. Imports the core only."""

from .entries import MAX_STYLE_SIDE, THUMBNAIL_SIDE, LibraryError, StyleInfo  # noqa: F401
from .gram_cache import GramCache, weights_tag  # noqa: F401
from .packs import read_pack  # noqa: F401
from .style_library import StyleLibrary  # noqa: F401
