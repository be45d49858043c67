#!/usr/bin/env python3
"""The contact_discovery worker under pgwake (started on demand by pgwake.conf)."""
import sys

import session_loop

sys.exit(session_loop.main("contact_discovery"))
