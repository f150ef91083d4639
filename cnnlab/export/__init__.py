"""From picture to code (#25): a model, a run or an exercise as runnable d2l-style PyTorch, a .py or a .ipynb.

Plain Python on torch alone (no streamlit; nbformat only where a notebook is built): ``code`` writes the model
in the book's idiom, ``book`` adds the data, the training loop, a run's weights or an exercise's two sides.
"""
from .code import IMPORTS, WRITERS, ModelCode, model_code  # noqa: F401
