"""Exercises (练习): the book's exercises as one-click A/B experiments; each exercise is a URL (?ex=...)."""
from cnnlab.ui import exercises_view

exercises_view.page()
