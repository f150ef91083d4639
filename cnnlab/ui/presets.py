"""The training presets live in cnnlab.presets (no streamlit) so admission control can suggest them."""
from ..presets import BOOK_PRESETS, CPU_PRESETS, PRESETS, Preset, for_device, label, measured  # noqa: F401
