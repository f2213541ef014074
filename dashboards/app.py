"""jitaudit dashboard: the router. Run with ``jitaudit dashboard --lake DIR``.

Pages are thin: they call ``jitaudit.dashboard`` through the caches in ``cache.py`` and draw.
They live in ``views/``, not ``pages/``, which Streamlit would also list in the sidebar by
itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

st.set_page_config(page_title="jitaudit", layout="wide")
PAGES = [
    st.Page("views/overview.py", title="Overview", url_path="overview", default=True),
    st.Page("views/findings.py", title="Findings", url_path="findings"),
    st.Page("views/timeline.py", title="Timeline", url_path="timeline"),
    st.Page("views/controls.py", title="Controls", url_path="controls"),
    st.Page("views/sources.py", title="Sources", url_path="sources"),
]
st.navigation(PAGES).run()
