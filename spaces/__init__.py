"""What may vary: mapping spaces (free-form and templates), constraints; later hardware spaces and budgets.

No solver runs here: spaces enumerate, sample, encode and decode points; searchers evaluate them.
"""

from .constraints import Constraints
from .mapping import FreeSpace, LevelChoice, MappingSpace, Point, divisors, loop_dims
from .template import TemplateSpace

__all__ = ["Constraints", "FreeSpace", "LevelChoice", "MappingSpace", "Point", "TemplateSpace", "divisors",
           "loop_dims"]
