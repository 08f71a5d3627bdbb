__version__ = "0.1.0"

import logging as _logging

# The package needs no torchvision (it uses none of transformers' image processors). When diffusers imports them,
# transformers notes once per class that it falls back to the PIL ones: a notice nobody here can act on.
_logging.getLogger("transformers.utils.import_utils").addFilter(
    lambda record: "requires torchvision (not installed)" not in record.getMessage())
