"""The package's PEP 517 build backend: maturin's, with Cargo's build folder outside the
source tree (`pip install ./python` leaves nothing behind in `python/`).

The folder is `$CARGO_TARGET_DIR` when set, else `mi-est-python-build` in the system's
temporary folder, kept between installs so that a second install rebuilds only what
changed.
"""

import os
import tempfile

os.environ.setdefault(
    "CARGO_TARGET_DIR", os.path.join(tempfile.gettempdir(), "mi-est-python-build")
)

from maturin import (  # noqa: E402,F401 - the hooks pip calls, as maturin defines them
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_wheel,
)
