"""The quick start's kit (`bchooks dev`): sandbox, receiver and JupyterLab in one folder.

    folder.py     `Kit`: one kit a folder, the notebooks' working copies, JupyterLab
    stack.py      the kit's processes (sandbox, receiver): start, record, find the running one, stop
    devsecret.py  the development secret, generated once into a private file

`bchooks.kit` itself is the kit's API (`from bchooks.kit import Kit, RUN_DIR` as before the packages).
"""

from .folder import LAB_OVERRIDES, LAB_SETTINGS, RUN_DIR, WORKING_NOTEBOOKS, Kit, lab_settings, working_copies

__all__ = ["LAB_OVERRIDES", "LAB_SETTINGS", "RUN_DIR", "WORKING_NOTEBOOKS", "Kit", "lab_settings", "working_copies"]
