# zoo.data's names; __init__.py imports each on first use (lazy_loader reads this).
from .files import (
    CorruptFileError as CorruptFileError,
    DatasetUnavailableError as DatasetUnavailableError,
    read_idx as read_idx,
)
from .formats import COLORS as COLORS, SCALINGS as SCALINGS
from .options import DataOptions as DataOptions
from .pipeline import DataInfo as DataInfo, load as load
from .sources import DIGITS as DIGITS
