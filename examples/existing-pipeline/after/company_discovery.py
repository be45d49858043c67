#!/usr/bin/env python3
"""The company_discovery worker under pgwake (started on demand by pgwake.conf)."""
import sys

import session_loop

sys.exit(session_loop.main("company_discovery"))
