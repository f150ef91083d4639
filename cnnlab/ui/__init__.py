"""The app's streamlit layer (the ONLY package that imports streamlit): shared state, widgets, views.

`figures` and `analysis` hold no streamlit and can be used and tested on their own.
"""
from .common import (arch_title, checkpoint_root, fmt_seconds, lang, plain, probe_config,  # noqa: F401
                     registry, resolve_config, safe_label, show_error, tr)
