"""Class (teacher mode only): every run of the class with nicknames, the class board for the projector, and
locked assignments. Students never see this page's content (they see their own runs only)."""
from cnnlab.ui import teacher_view

teacher_view.class_page()
